/**
 * The zod input schema of the JSON config file: snake_case keys, everything
 * optional, each default written next to its key. Objects are strict so a
 * typo ("min_intervall_ms") is an error instead of a silently ignored key.
 * Parsing yields the fully defaulted snake_case form; `load.ts` compiles it
 * into the camelCase `HbaggConfig`.
 */
import os from 'node:os';
import cron from 'node-cron';
import { z } from 'zod';
import { checkHttpUrl, checkListen, checkNatsServer, checkSubjectPrefix } from './checks.js';
import { longestSafePingEveryMs, openctiSchema } from './opencti-schema.js';

export const NODE_ID_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** docs/PROTOCOL.md 2.3 promises retired instances are remembered for at least 10 minutes. */
export const MIN_TOMBSTONE_RETENTION_MS = 600_000;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function got(input: unknown): string {
  if (input === undefined) return '';
  const text = JSON.stringify(input);
  return `, got ${text.length > 60 ? `${text.slice(0, 57)}...` : text}`;
}

/** An integer in [min, max]; one message for every way of missing it. */
function int(min: number, max: number) {
  const error = (iss: { input?: unknown }) => `expected an integer from ${min} to ${max}${got(iss.input)}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

/** A string checked by one of `checks.ts`; the check's message is the issue. */
function checked(check: (value: string) => string | undefined) {
  return z.string({ error: 'expected a string' }).superRefine((value, ctx) => {
    const message = check(value);
    if (message !== undefined) ctx.addIssue({ code: 'custom', message });
  });
}

/** Secrets and paths: any non-empty string. Never echo the input: it may be a secret. */
const text = () => z.string({ error: 'expected a non-empty string' }).min(1, { error: 'expected a non-empty string' });

const cronExpr = () =>
  checked((value) =>
    cron.validate(value) ? undefined : `not a valid node-cron expression: ${JSON.stringify(value)}`,
  );

const natsSchema = z
  .strictObject({
    /** A single URL or a list. Default ["nats://127.0.0.1:4222"]. */
    servers: z
      .union([z.string(), z.array(z.string())], { error: 'expected a server URL or a list of them' })
      .transform((v) => (typeof v === 'string' ? [v] : v))
      .pipe(z.array(checked(checkNatsServer)).min(1, { error: 'expected at least one server' }))
      .default(['nats://127.0.0.1:4222']),
    /** Beats arrive on `<prefix>.beat.<worker>`. Default "hb". */
    subject_prefix: checked(checkSubjectPrefix).default('hb'),
    /** Connection name in NATS monitoring. Default "hbagg-<node_id>" (filled in by the loader). */
    name: text().optional(),
    user: text().optional(),
    pass: text().optional(),
    token: text().optional(),
    creds_file: text().optional(),
    tls_ca_file: text().optional(),
  })
  .superRefine((nats, ctx) => {
    // A user without a password (or the reverse) is always a mistake, never a choice.
    if (nats.user !== undefined && nats.pass === undefined) {
      ctx.addIssue({ code: 'custom', path: ['pass'], message: 'nats.user is set, so nats.pass is required' });
    }
    if (nats.pass !== undefined && nats.user === undefined) {
      ctx.addIssue({ code: 'custom', path: ['user'], message: 'nats.pass is set, so nats.user is required' });
    }
  });

export const PLATFORM_KINDS = ['hbagg', 'opencti'] as const;

const platformSchema = z
  .strictObject({
    /** "hbagg" (the batched ping, default) or "opencti" (pingConnector on the connectors' behalf). */
    kind: z
      .enum(PLATFORM_KINDS, { error: (iss) => `expected one of ${PLATFORM_KINDS.join(', ')}${got(iss.input)}` })
      .default('hbagg'),
    /** Where batched pings are POSTed (kind "opencti": the OpenCTI base URL). No default; `hbagg run` requires it. */
    url: checked(checkHttpUrl).optional(),
    token: text().optional(),
    /** A file holding the bearer token (trimmed); keeps the secret out of the config. */
    token_file: text().optional(),
    /** Default 5000. */
    timeout_ms: int(100, 10 * 60_000).default(5000),
    /** Default 1000. */
    max_batch_workers: int(1, 100_000).default(1000),
    /** Default 600000 (10 min). */
    max_retry_after_ms: int(1000, DAY).default(600_000),
    /** Delta pings (PROTOCOL.md 3.1): `auto` sends them when the platform offers them; `off` sends v1 pings. Default `auto`. */
    delta: z.enum(['auto', 'off'], { error: 'must be "auto" or "off"' }).default('auto'),
    opencti: openctiSchema.prefault({}),
  })
  .superRefine((platform, ctx) => {
    const o = platform.opencti;
    const longest = longestSafePingEveryMs(o.inactive_after_ms, platform.timeout_ms);
    if (platform.kind === 'opencti' && o.ping_every_ms > longest) {
      ctx.addIssue({
        code: 'custom',
        path: ['opencti', 'ping_every_ms'],
        message: `must be <= ${longest} so that a connector stays active through one failed ping (platform.opencti.inactive_after_ms ${o.inactive_after_ms}, platform.timeout_ms ${platform.timeout_ms}), got ${o.ping_every_ms}`,
      });
    }
    if (platform.token !== undefined && platform.token_file !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['token_file'], message: 'set platform.token or platform.token_file, not both' });
    }
  });

const httpSchema = z.strictObject({
  /** Default "127.0.0.1:9470". */
  listen: checked(checkListen).default('127.0.0.1:9470'),
  /** When set, POST routes and GET /v1/workers need `authorization: Bearer <token>`. */
  token: text().optional(),
  /** Default 65536. */
  max_body_bytes: int(1024, 16 * 1024 * 1024).default(65_536),
  /** Whether GET /v1/workers shows the workers' meta values. Default false. */
  expose_meta: z.boolean({ error: 'expected true or false' }).default(false),
});

const flushSchema = z
  .strictObject({
    /** Default 1000. */
    min_interval_ms: int(10, HOUR).default(1000),
    /** Default 30000. */
    max_interval_ms: int(10, HOUR).default(30_000),
    /** Default 50. */
    urgent_flush_ms: int(0, HOUR).default(50),
    /** With delta pings, a full ping at least this often. Default 300000 (5 min). */
    full_every_ms: int(1000, DAY).default(300_000),
  })
  .superRefine((flush, ctx) => {
    // A value already out of its own range is the root cause: comparing it with another key adds only noise.
    const fine = (v: number, min: number) => Number.isInteger(v) && v >= min && v <= HOUR;
    const [min, max, urgent] = [flush.min_interval_ms, flush.max_interval_ms, flush.urgent_flush_ms];
    if (fine(min, 10) && fine(max, 10) && min > max) {
      ctx.addIssue({
        code: 'custom',
        path: ['min_interval_ms'],
        message: `must be <= flush.max_interval_ms (${min} > ${max})`,
        // The loader reports it here instead when only max_interval_ms was set.
        params: { other: ['flush', 'max_interval_ms'], otherMessage: `must be >= flush.min_interval_ms (${max} < ${min}, its default); raise it or lower flush.min_interval_ms` },
      });
    }
    // An urgent flush that is no faster than the regular one would be pointless.
    if (fine(min, 10) && fine(urgent, 0) && urgent >= min) {
      ctx.addIssue({
        code: 'custom',
        path: ['urgent_flush_ms'],
        message: `must be < flush.min_interval_ms (${urgent} >= ${min})`,
        params: { other: ['flush', 'min_interval_ms'], otherMessage: `must be > flush.urgent_flush_ms (${min} <= ${urgent}, its default); raise it or lower flush.urgent_flush_ms` },
      });
    }
  });

const workersSchema = z.strictObject({
  /** Default 3000. */
  lost_after_min_ms: int(100, DAY).default(3000),
  /** Default 10000. */
  max_workers: int(1, 1_000_000).default(10_000),
  /** Default 600000; less would break the protocol's 10-minute promise. */
  tombstone_retention_ms: int(MIN_TOMBSTONE_RETENTION_MS, 7 * DAY).default(600_000),
  /** Default 100000. */
  max_tombstones: int(1, 10_000_000).default(100_000),
  /** Default 30000. */
  default_drain_timeout_ms: int(0, DAY).default(30_000),
});

const housekeepingSchema = z.strictObject({
  /** Default "0 * * * * *" (every minute). */
  summary_cron: cronExpr().default('0 * * * * *'),
  /** Default "*\/30 * * * * *" (every 30 s). */
  prune_cron: cronExpr().default('*/30 * * * * *'),
  /** Default "0 *\/5 * * * *" (every 5 min). */
  compact_cron: cronExpr().default('0 */5 * * * *'),
});

/** `prefault({})` (not `default`) so a missing section is parsed and gets its key defaults. */
export const configSchema = z.strictObject({
  /** Default: the host name. */
  node_id: z
    .string({ error: 'expected a string' })
    .regex(NODE_ID_PATTERN, { error: (iss) => `must match ${NODE_ID_PATTERN.source}${got(iss.input)}` })
    .default(() => os.hostname()),
  nats: natsSchema.prefault({}),
  platform: platformSchema.prefault({}),
  http: httpSchema.prefault({}),
  flush: flushSchema.prefault({}),
  workers: workersSchema.prefault({}),
  housekeeping: housekeepingSchema.prefault({}),
  /** Default "./state". */
  state_dir: text().default('./state'),
  /** Default "info". */
  log_level: z
    .enum(LOG_LEVELS, { error: (iss) => `expected one of ${LOG_LEVELS.join(', ')}${got(iss.input)}` })
    .default('info'),
  /** Default 1000. */
  health_cache_ms: int(0, 60_000).default(1000),
  /** Default 10000. */
  shutdown_timeout_ms: int(100, 10 * 60_000).default(10_000),
});

/** What people write in the file. */
export type HbaggConfigInput = z.input<typeof configSchema>;
/** The parsed file: snake_case, every default filled in. */
export type HbaggConfigParsed = z.output<typeof configSchema>;
