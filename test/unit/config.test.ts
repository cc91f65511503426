import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, configSchema, loadConfig, redactConfig, type ConfigIssue } from '../../src/config/index.js';

const DEFAULT_JSON = fileURLToPath(new URL('../../config/default.json', import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hbagg-config-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let fileCount = 0;
function writeFile(content: unknown): string {
  const file = path.join(tmp, `config-${++fileCount}.json`);
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return file;
}

/** Runs loadConfig expecting a ConfigError and returns its issues. */
function issuesOf(opts: Parameters<typeof loadConfig>[0]): ConfigIssue[] {
  try {
    loadConfig(opts);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).issues];
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig', () => {
  it('fills every default when there is no file and no env', () => {
    const cfg = loadConfig({ env: {} });
    expect(cfg).toEqual({
      nodeId: os.hostname(),
      nats: { servers: ['nats://127.0.0.1:4222'], subjectPrefix: 'hb', name: `hbagg-${os.hostname()}` },
      platform: {
        kind: 'hbagg', timeoutMs: 5000, maxBatchWorkers: 1000, maxRetryAfterMs: 600_000, delta: 'auto',
        opencti: { pingEveryMs: 120_000, aliasesPerRequest: 1, deleteOnStop: false, connectors: {}, inactiveAfterMs: 300_000 },
      },
      http: { listen: '127.0.0.1:9470', host: '127.0.0.1', port: 9470, maxBodyBytes: 65_536, exposeMeta: false },
      flush: { minIntervalMs: 1000, maxIntervalMs: 30_000, urgentFlushMs: 50, fullEveryMs: 300_000 },
      workers: {
        lostAfterMinMs: 3000,
        maxWorkers: 10_000,
        tombstoneRetentionMs: 600_000,
        maxTombstones: 100_000,
        defaultDrainTimeoutMs: 30_000,
      },
      housekeeping: { summaryCron: '0 * * * * *', pruneCron: '*/30 * * * * *', compactCron: '0 */5 * * * *' },
      stateDir: './state',
      logLevel: 'info',
      healthCacheMs: 1000,
      shutdownTimeoutMs: 10_000,
    });
  });

  it('overlays env variables on the file, and env wins', () => {
    const file = writeFile({
      node_id: 'from-file',
      nats: { servers: 'nats://file:4222', subject_prefix: 'file' },
      flush: { min_interval_ms: 2000, max_interval_ms: 20_000 },
      http: { listen: '0.0.0.0:1234' },
      log_level: 'debug',
    });
    const cfg = loadConfig({
      file,
      env: {
        HBAGG_NODE_ID: 'from-env',
        HBAGG_NATS_URL: 'nats://a:4222, tls://b:4222',
        HBAGG_MIN_INTERVAL_MS: '500',
        HBAGG_HTTP_LISTEN: '[::1]:9000',
      },
    });
    expect(cfg.nodeId).toBe('from-env');
    expect(cfg.nats.servers).toEqual(['nats://a:4222', 'tls://b:4222']);
    expect(cfg.nats.subjectPrefix).toBe('file');
    expect(cfg.nats.name).toBe('hbagg-from-env');
    expect(cfg.flush).toEqual({ minIntervalMs: 500, maxIntervalMs: 20_000, urgentFlushMs: 50, fullEveryMs: 300_000 });
    expect(cfg.http).toMatchObject({ listen: '[::1]:9000', host: '::1', port: 9000 });
    expect(cfg.logLevel).toBe('debug');
  });

  it('treats empty env variables as unset', () => {
    const file = writeFile({ node_id: 'kept', flush: { min_interval_ms: 2000 } });
    const cfg = loadConfig({
      file,
      env: { HBAGG_NODE_ID: '', HBAGG_MIN_INTERVAL_MS: '', HBAGG_NATS_URL: '', HBAGG_PLATFORM_TOKEN: ' ' },
    });
    expect(cfg.nodeId).toBe('kept');
    expect(cfg.flush.minIntervalMs).toBe(2000);
    expect(cfg.nats.servers).toEqual(['nats://127.0.0.1:4222']);
    expect(cfg.platform.token).toBeUndefined();
  });

  it('reports every bad key together, each with its dotted path', () => {
    const file = writeFile({
      node_id: 'has space',
      nats: { subject_prefix: 'hb.*', servers: ['nats://ok:4222', 'not a url'] },
      platform: { url: 'ftp://example.com', token: 'a', token_file: 'b', timeout_ms: 1.5 },
      http: { listen: 'localhost:70000' },
      flush: { urgent_flush_ms: 1000 },
      workers: { tombstone_retention_ms: 60_000 },
      housekeeping: { prune_cron: 'every minute' },
      log_level: 'loud',
    });
    const issues = issuesOf({ file, env: {} });
    expect(issues.map((i) => i.key).sort()).toEqual(
      [
        'node_id',
        'nats.subject_prefix',
        'nats.servers[1]',
        'platform.url',
        'platform.token_file',
        'platform.timeout_ms',
        'http.listen',
        'flush.urgent_flush_ms',
        'workers.tombstone_retention_ms',
        'housekeeping.prune_cron',
        'log_level',
      ].sort(),
    );
    const error = (() => {
      try {
        return loadConfig({ file, env: {} });
      } catch (err) {
        return err as Error;
      }
    })();
    expect((error as Error).message.split('\n')).toHaveLength(issues.length);
    expect((error as Error).message).toContain('workers.tombstone_retention_ms: expected an integer from 600000');
  });

  it('names the env variable when a bad value came from the environment', () => {
    const issues = issuesOf({
      env: { HBAGG_MIN_INTERVAL_MS: 'abc', HBAGG_LOG_LEVEL: 'loud', HBAGG_NATS_URL: 'nats://ok:4222,bad host' },
    });
    expect(issues).toContainEqual({ key: 'HBAGG_MIN_INTERVAL_MS', message: 'expected an integer, got "abc"' });
    expect(issues.map((i) => i.key)).toEqual(
      expect.arrayContaining(['HBAGG_MIN_INTERVAL_MS', 'HBAGG_LOG_LEVEL', 'HBAGG_NATS_URL']),
    );
    expect(() => loadConfig({ env: { HBAGG_MAX_WORKERS: '12.5' } })).toThrow(
      'HBAGG_MAX_WORKERS: expected an integer, got "12.5"',
    );
  });

  it('takes delta pings settings from the environment, and names a bad platform.delta', () => {
    const cfg = loadConfig({ env: { HBAGG_DELTA: 'off', HBAGG_FULL_EVERY_MS: '60000' } });
    expect(cfg.platform.delta).toBe('off');
    expect(cfg.flush.fullEveryMs).toBe(60_000);
    expect(() => loadConfig({ env: { HBAGG_DELTA: 'sometimes' } })).toThrow('HBAGG_DELTA: must be "auto" or "off"');
    expect(issuesOf({ file: writeFile({ platform: { delta: 'yes' } }) })).toEqual([{ key: 'platform.delta', message: 'must be "auto" or "off"' }]);
    // check-config shows them.
    expect(redactConfig(cfg)).toMatchObject({ platform: { delta: 'off' }, flush: { full_every_ms: 60_000 } });
  });

  it('refuses credentials in a NATS server URL (the client ignores them) without echoing the secret', () => {
    const issues = issuesOf({ env: { HBAGG_NATS_URL: 'nats://bob:server-secret@n1:4222' } });
    expect(issues).toHaveLength(1);
    expect(issues[0]!.key).toBe('HBAGG_NATS_URL');
    expect(issues[0]!.message).toContain('nats.user/nats.pass');
    expect(issues[0]!.message).not.toContain('server-secret');
  });

  it('reads the token file and trims it', () => {
    const tokenFile = path.join(tmp, 'token');
    fs.writeFileSync(tokenFile, '  s3cret-token\n');
    expect(loadConfig({ env: { HBAGG_PLATFORM_TOKEN_FILE: tokenFile } }).platform.token).toBe('s3cret-token');
    const file = writeFile({ platform: { token_file: tokenFile } });
    expect(loadConfig({ file, env: {} }).platform.token).toBe('s3cret-token');
    // The env's token replaces the file's token_file rather than clashing with it.
    expect(loadConfig({ file, env: { HBAGG_PLATFORM_TOKEN: 'env-token' } }).platform.token).toBe('env-token');
  });

  it('rejects a missing token file and both token variables at once', () => {
    const missing = path.join(tmp, 'nope');
    expect(issuesOf({ env: { HBAGG_PLATFORM_TOKEN_FILE: missing } })).toEqual([
      { key: 'HBAGG_PLATFORM_TOKEN_FILE', message: `cannot read token file ${JSON.stringify(missing)}: file not found` },
    ]);
    const both = issuesOf({ env: { HBAGG_PLATFORM_TOKEN: 'a', HBAGG_PLATFORM_TOKEN_FILE: missing } });
    expect(both.map((i) => i.key)).toEqual(['HBAGG_PLATFORM_TOKEN_FILE']);
    expect(both[0]?.message).toContain('not both');
  });

  it('rejects an unknown key and names it', () => {
    const file = writeFile({ flush: { min_intervall_ms: 100 }, stat_dir: '/x' });
    const issues = issuesOf({ file, env: {} });
    expect(issues.map((i) => i.key).sort()).toEqual(['flush.min_intervall_ms', 'stat_dir']);
    expect(issues[0]?.message).toMatch(/unknown key/);
  });

  it('rejects min_interval_ms greater than max_interval_ms', () => {
    const file = writeFile({ flush: { min_interval_ms: 5000, max_interval_ms: 2000 } });
    const issues = issuesOf({ file, env: {} });
    expect(issues).toEqual([
      { key: 'flush.min_interval_ms', message: 'must be <= flush.max_interval_ms (5000 > 2000)' },
    ]);
  });

  it('requires platform.url only when asked to', () => {
    expect(loadConfig({ env: {} }).platform.url).toBeUndefined();
    expect(issuesOf({ env: {}, requirePlatformUrl: true }).map((i) => i.key)).toEqual(['platform.url']);
    const cfg = loadConfig({ env: { HBAGG_PLATFORM_URL: 'https://p.example/v1' }, requirePlatformUrl: true });
    expect(cfg.platform.url).toBe('https://p.example/v1');
  });

  it('names the file and the position of invalid JSON', () => {
    const file = writeFile('{\n  "node_id": "a",\n  "log_level" "info"\n}');
    const [issue] = issuesOf({ file, env: {} });
    expect(issue?.key).toBe(file);
    expect(issue?.message).toMatch(/^invalid JSON at line 3, column \d+/);
    expect(issuesOf({ file: path.join(tmp, 'absent.json') })[0]?.message).toContain('file not found');
  });

  it('loads config/default.json cleanly, and it spells out every default', () => {
    // platform.url has no default: `run` needs HBAGG_PLATFORM_URL or a url in the file.
    const cfg = loadConfig({ file: DEFAULT_JSON, env: {} });
    expect(cfg.platform.url).toBeUndefined();
    expect(cfg).toEqual(loadConfig({ env: {} }));
  });
});

describe('redactConfig', () => {
  it('never shows a secret, and keeps showing that one is set', () => {
    const tokenFile = path.join(tmp, 'redact-token');
    fs.writeFileSync(tokenFile, 'platform-secret\n');
    const cfg = loadConfig({
      env: {
        HBAGG_PLATFORM_TOKEN_FILE: tokenFile,
        // Userinfo is refused; a query string may still hold a secret.
        HBAGG_PLATFORM_URL: 'https://p.example/v1?key=url-secret',
        HBAGG_HTTP_TOKEN: 'http-secret',
        HBAGG_NATS_USER: 'alice',
        HBAGG_NATS_PASS: 'nats-pass-secret',
        HBAGG_NATS_TOKEN: 'nats-token-secret',
      },
    });
    const redacted = redactConfig(cfg);
    const text = JSON.stringify(redacted);
    for (const secret of ['platform-secret', 'url-secret', 'http-secret', 'nats-pass-secret', 'nats-token-secret']) {
      expect(text).not.toContain(secret);
    }
    expect(redacted).toMatchObject({
      nats: { user: 'alice', pass: '[redacted]', token: '[redacted]' },
      platform: { token: '[redacted]' },
      http: { token: '[redacted]' },
    });
  });

  it('omits absent secrets and writes a file the schema accepts', () => {
    const redacted = redactConfig(loadConfig({ file: DEFAULT_JSON, env: {} })) as Record<string, Record<string, unknown>>;
    expect(redacted.platform).not.toHaveProperty('token');
    expect(redacted.http).not.toHaveProperty('token');
    expect(redacted.nats).not.toHaveProperty('pass');
    expect(configSchema.safeParse(redacted).success).toBe(true);
  });
});
