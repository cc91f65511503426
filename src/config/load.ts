/**
 * Builds the effective configuration: the JSON file, then environment
 * variables on top (env wins), validated once, then compiled into the
 * camelCase `HbaggConfig`. Every problem found along the way is collected
 * and thrown together as one `ConfigError`, so a bad config takes one edit
 * cycle to fix, not one per key.
 */
import fs from 'node:fs';
import { checkNoControlChars, parseHostPort } from './checks.js';
import { controlCharIssues, towardWhatWasSet } from './issue-rules.js';
import {
  ConfigError,
  describeJsonError,
  describeReadError,
  type ConfigIssue,
  fromZodIssue,
} from './errors.js';
import { unknownEnvWarnings } from './env-names.js';
import { configSchema, type HbaggConfigInput, type HbaggConfigParsed } from './schema.js';
import type { HbaggConfig } from './types.js';

export interface LoadConfigOptions {
  /** JSON config file; without it, defaults and env only. */
  file?: string;
  /** The config as an object in the file's shape, used instead of `file` (library callers). */
  input?: HbaggConfigInput;
  /** Defaults to `process.env`; tests pass their own. */
  env?: NodeJS.ProcessEnv;
  /** `hbagg run` cannot work without somewhere to send pings. */
  requirePlatformUrl?: boolean;
  /** Told of problems that do not stop loading (an unknown `HBAGG_*` variable). */
  onWarning?: (warning: ConfigIssue) => void;
}

type Raw = Record<string, unknown>;
type EnvKind = 'string' | 'int' | 'list';

/** docs/PROTOCOL.md section 5, plus the secrets people keep out of files. */
const ENV_VARS: readonly (readonly [name: string, path: readonly string[], kind: EnvKind])[] = [
  ['HBAGG_NODE_ID', ['node_id'], 'string'],
  ['HBAGG_NATS_URL', ['nats', 'servers'], 'list'],
  ['HBAGG_SUBJECT_PREFIX', ['nats', 'subject_prefix'], 'string'],
  ['HBAGG_NATS_USER', ['nats', 'user'], 'string'],
  ['HBAGG_NATS_PASS', ['nats', 'pass'], 'string'],
  ['HBAGG_NATS_TOKEN', ['nats', 'token'], 'string'],
  ['HBAGG_NATS_CREDS', ['nats', 'creds_file'], 'string'],
  ['HBAGG_NATS_TLS_CA', ['nats', 'tls_ca_file'], 'string'],
  ['HBAGG_PLATFORM_KIND', ['platform', 'kind'], 'string'],
  ['HBAGG_PLATFORM_URL', ['platform', 'url'], 'string'],
  ['HBAGG_PLATFORM_TOKEN', ['platform', 'token'], 'string'],
  ['HBAGG_PLATFORM_TOKEN_FILE', ['platform', 'token_file'], 'string'],
  ['HBAGG_HTTP_LISTEN', ['http', 'listen'], 'string'],
  ['HBAGG_HTTP_TOKEN', ['http', 'token'], 'string'],
  ['HBAGG_MIN_INTERVAL_MS', ['flush', 'min_interval_ms'], 'int'],
  ['HBAGG_MAX_INTERVAL_MS', ['flush', 'max_interval_ms'], 'int'],
  ['HBAGG_URGENT_FLUSH_MS', ['flush', 'urgent_flush_ms'], 'int'],
  ['HBAGG_FULL_EVERY_MS', ['flush', 'full_every_ms'], 'int'],
  ['HBAGG_DELTA', ['platform', 'delta'], 'string'],
  ['HBAGG_LOST_AFTER_MIN_MS', ['workers', 'lost_after_min_ms'], 'int'],
  ['HBAGG_MAX_WORKERS', ['workers', 'max_workers'], 'int'],
  ['HBAGG_STATE_DIR', ['state_dir'], 'string'],
  ['HBAGG_LOG_LEVEL', ['log_level'], 'string'],
  ['HBAGG_SHUTDOWN_TIMEOUT_MS', ['shutdown_timeout_ms'], 'int'],
];

/** `platform.token` and `platform.token_file` are two spellings of one setting. */
const TOKEN_VARS = ['HBAGG_PLATFORM_TOKEN', 'HBAGG_PLATFORM_TOKEN_FILE'] as const;

export function loadConfig(opts: LoadConfigOptions = {}): HbaggConfig {
  const raw = opts.input !== undefined ? copyInput(opts.input) : opts.file === undefined ? {} : readConfigFile(opts.file);
  const issues: ConfigIssue[] = [];
  const sources = applyEnv(raw, opts.env ?? process.env, issues);

  // Reported once, here: the schema's own complaint about the same value would be a duplicate.
  const controlled = controlCharIssues(raw, sources);
  issues.push(...controlled);
  const reported = new Set(controlled.map((i) => i.key));
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const found = result.error.issues.map((issue) => towardWhatWasSet(issue, raw)).flatMap((issue) => fromZodIssue(issue, sources));
    // One line per problem: the same key and message from two routes is said once.
    const seen = new Set<string>();
    for (const issue of found) {
      const id = `${issue.key}\u0000${issue.message}`;
      if (reported.has(issue.key) || seen.has(id)) continue;
      seen.add(id);
      issues.push(issue);
    }
  }
  for (const warning of unknownEnvWarnings(opts.env ?? process.env, ENV_VARS.map(([name]) => name))) opts.onWarning?.(warning);

  const platform = isPlainObject(raw.platform) ? raw.platform : {};
  if (opts.requirePlatformUrl && platform.url === undefined) {
    issues.push({ key: 'platform.url', message: 'required to run the daemon (or set HBAGG_PLATFORM_URL)' });
  }
  // Read even when other keys are bad, so a missing token file shows up in the same report.
  const token = typeof platform.token_file === 'string' && platform.token_file !== ''
    ? readTokenFile(platform.token_file, sources.get('platform.token_file') ?? 'platform.token_file', issues)
    : undefined;

  if (issues.length > 0 || !result.success) throw new ConfigError(issues);
  return compile(result.data, token);
}

/** A deep copy (the env is written into it); only plain data, as a JSON file would hold. */
function copyInput(input: unknown): Raw {
  let copy: unknown;
  try {
    copy = JSON.parse(JSON.stringify(input)) as unknown;
  } catch (err) {
    throw new ConfigError([{ key: '(input)', message: `the config object is not plain JSON data: ${(err as Error).message}` }]);
  }
  if (!isPlainObject(copy)) throw new ConfigError([{ key: '(input)', message: 'expected an object at the top level' }]);
  return copy;
}

function readConfigFile(file: string): Raw {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ key: file, message: `cannot read the config file: ${describeReadError(err)}` }]);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.replace(/^\uFEFF/, '')); // editors on Windows like to add a BOM
  } catch (err) {
    throw new ConfigError([{ key: file, message: describeJsonError(text, err) }]);
  }
  if (!isPlainObject(parsed)) {
    throw new ConfigError([{ key: file, message: 'expected a JSON object at the top level' }]);
  }
  return parsed;
}

/**
 * Writes env values into `raw` (in place) and returns which path each
 * variable set. Empty values count as unset: `FOO= hbagg run` is a common way
 * to "unset" a variable in shells and compose files.
 */
function applyEnv(raw: Raw, env: NodeJS.ProcessEnv, issues: ConfigIssue[]): Map<string, string> {
  const sources = new Map<string, string>();
  const present = (name: string) => (env[name] ?? '').trim() !== '';
  const bothTokens = TOKEN_VARS.every(present);
  if (bothTokens) {
    issues.push({ key: TOKEN_VARS[1], message: `set ${TOKEN_VARS[0]} or ${TOKEN_VARS[1]}, not both` });
  }
  for (const [name, path, kind] of ENV_VARS) {
    const text = env[name];
    if (text === undefined || !present(name)) continue;
    if (bothTokens && (TOKEN_VARS as readonly string[]).includes(name)) continue;
    let value: unknown = text;
    if (kind === 'int') {
      const trimmed = text.trim();
      if (!/^-?\d+$/.test(trimmed)) {
        issues.push({ key: name, message: `expected an integer, got ${JSON.stringify(text)}` });
        continue;
      }
      value = Number(trimmed);
    } else if (kind === 'list') {
      value = text.split(',').map((part) => part.trim()).filter((part) => part !== '');
    }
    const [section, key] = path.length === 2 ? path : [undefined, path[0]];
    let target: Raw = raw;
    if (section !== undefined) {
      if (raw[section] === undefined) raw[section] = {};
      const obj = raw[section];
      // A section that is not an object is reported by the schema; leave it as written.
      if (!isPlainObject(obj)) continue;
      target = obj;
    }
    target[key as string] = value;
    sources.set(path.join('.'), name);
    // The env's token, in either spelling, replaces the file's token in either spelling.
    if (name === TOKEN_VARS[0]) delete target.token_file;
    if (name === TOKEN_VARS[1]) delete target.token;
  }
  return sources;
}

function readTokenFile(file: string, key: string, issues: ConfigIssue[]): string | undefined {
  try {
    const token = fs.readFileSync(file, 'utf8').trim(); // `echo secret > file` leaves a newline
    if (token === '') issues.push({ key, message: `token file ${JSON.stringify(file)} is empty` });
    const control = checkNoControlChars(token);
    if (control !== undefined) issues.push({ key, message: `token file ${JSON.stringify(file)}: the token ${control}` });
    return token === '' || control !== undefined ? undefined : token;
  } catch (err) {
    issues.push({ key, message: `cannot read token file ${JSON.stringify(file)}: ${describeReadError(err)}` });
    return undefined;
  }
}

function compile(p: HbaggConfigParsed, tokenFromFile: string | undefined): HbaggConfig {
  const listen = parseHostPort(p.http.listen);
  if (!listen) throw new Error(`unreachable: http.listen ${p.http.listen} passed validation`);
  return {
    nodeId: p.node_id,
    nats: {
      servers: p.nats.servers,
      subjectPrefix: p.nats.subject_prefix,
      name: p.nats.name ?? `hbagg-${p.node_id}`,
      user: p.nats.user,
      pass: p.nats.pass,
      token: p.nats.token,
      credsFile: p.nats.creds_file,
      tlsCaFile: p.nats.tls_ca_file,
    },
    platform: {
      kind: p.platform.kind,
      url: p.platform.url,
      token: p.platform.token ?? tokenFromFile,
      timeoutMs: p.platform.timeout_ms,
      maxBatchWorkers: p.platform.max_batch_workers,
      maxRetryAfterMs: p.platform.max_retry_after_ms,
      delta: p.platform.delta,
      opencti: {
        pingEveryMs: p.platform.opencti.ping_every_ms,
        aliasesPerRequest: p.platform.opencti.aliases_per_request,
        deleteOnStop: p.platform.opencti.delete_on_stop,
        connectors: p.platform.opencti.connectors,
        inactiveAfterMs: p.platform.opencti.inactive_after_ms,
      },
    },
    http: {
      listen: p.http.listen, ...listen, token: p.http.token, maxBodyBytes: p.http.max_body_bytes, exposeMeta: p.http.expose_meta,
    },
    flush: {
      minIntervalMs: p.flush.min_interval_ms,
      maxIntervalMs: p.flush.max_interval_ms,
      urgentFlushMs: p.flush.urgent_flush_ms,
      fullEveryMs: p.flush.full_every_ms,
    },
    workers: {
      lostAfterMinMs: p.workers.lost_after_min_ms,
      maxWorkers: p.workers.max_workers,
      tombstoneRetentionMs: p.workers.tombstone_retention_ms,
      maxTombstones: p.workers.max_tombstones,
      defaultDrainTimeoutMs: p.workers.default_drain_timeout_ms,
    },
    housekeeping: {
      summaryCron: p.housekeeping.summary_cron,
      pruneCron: p.housekeeping.prune_cron,
      compactCron: p.housekeeping.compact_cron,
    },
    stateDir: p.state_dir,
    logLevel: p.log_level,
    healthCacheMs: p.health_cache_ms,
    shutdownTimeoutMs: p.shutdown_timeout_ms,
  };
}

function isPlainObject(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
