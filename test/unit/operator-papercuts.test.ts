/** The small things an operator trips over. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { ConfigError, configSchema, loadConfig, type ConfigIssue } from '../../src/config/index.js';
import { judgePlatform } from '../../src/daemon/http/health-checks.js';
import { describeStateDirError } from '../../src/daemon/state-dir-error.js';

function issuesOf(opts: Parameters<typeof loadConfig>[0]): ConfigIssue[] {
  try {
    loadConfig(opts);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).issues];
  }
  throw new Error('expected loadConfig to throw');
}

describe('operator papercuts', () => {
  it('shows a refused ping in /healthz as "HTTP 401: <body>", not "HTTP 401: HTTP 401: <body>"', () => {
    const v = judgePlatform({
      nowWall: 10_000, startedAtWall: 0, lastAcceptedWall: undefined, allowanceMs: 60_000,
      last: { atWall: 9_000, atMono: 9_000, outcome: 'rejected', status: 401, error: 'HTTP 401: bad token' },
    });
    expect(v).toEqual({ ok: false, error: 'last ping rejected (HTTP 401: bad token) 1000 ms ago; no ping accepted yet' });
  });

  it('keeps every key of config/default.json equal to the schema default, with no example platform URL', () => {
    const file = JSON.parse(readFileSync(new URL('../../config/default.json', import.meta.url), 'utf8')) as Record<string, unknown>;
    const defaults = configSchema.parse({}) as Record<string, unknown>;
    // node_id defaults to the host name and nats.name to hbagg-<node_id>: no fixed value a file could hold.
    delete defaults.node_id;
    const nats = { ...(defaults.nats as Record<string, unknown>) };
    delete nats.name;
    expect(file).toEqual({ ...defaults, nats });
    expect(JSON.stringify(file)).not.toContain('"url"');
    expect(() => loadConfig({ file: new URL('../../config/default.json', import.meta.url).pathname, env: {} })).not.toThrow();
  });

  it('warns about an unknown HBAGG_ variable, naming the closest known one', () => {
    const warnings: ConfigIssue[] = [];
    loadConfig({ env: { HBAGG_MIN_INTERVAL: '500', HBAGG_PLATFORM_TOKEN_FIEL: '/x', HBAGG_RECEIVER_TOKEN: 't', OTHER: '1' }, onWarning: (w) => warnings.push(w) });
    expect(warnings).toEqual([
      { key: 'HBAGG_MIN_INTERVAL', message: 'unknown variable, ignored; did you mean HBAGG_MIN_INTERVAL_MS?' },
      { key: 'HBAGG_PLATFORM_TOKEN_FIEL', message: 'unknown variable, ignored; did you mean HBAGG_PLATFORM_TOKEN_FILE?' },
    ]);
  });

  it('reports only the root cause for a value out of range, not a conflict with a default the user never set', () => {
    expect(issuesOf({ env: { HBAGG_MAX_INTERVAL_MS: '5' } })).toEqual([
      { key: 'HBAGG_MAX_INTERVAL_MS', message: 'expected an integer from 10 to 3600000, got 5' },
    ]);
  });

  it('says the same problem once, even when one variable holds it twice', () => {
    expect(issuesOf({ env: { HBAGG_NATS_URL: 'bad url, bad url' } })).toEqual([
      { key: 'HBAGG_NATS_URL', message: 'expected nats://host:port, tls://host:port or host:port, got "bad url"' },
    ]);
  });

  it('reports a conflict with a default under the key the user set', () => {
    expect(issuesOf({ env: { HBAGG_MIN_INTERVAL_MS: '40' } })).toEqual([
      { key: 'HBAGG_MIN_INTERVAL_MS', message: 'must be > flush.urgent_flush_ms (40 <= 50, its default); raise it or lower flush.urgent_flush_ms' },
    ]);
    expect(issuesOf({ env: { HBAGG_MAX_INTERVAL_MS: '500' } })).toEqual([
      { key: 'HBAGG_MAX_INTERVAL_MS', message: 'must be >= flush.min_interval_ms (500 < 1000, its default); raise it or lower flush.min_interval_ms' },
    ]);
  });

  it('phrases a state dir failure like a config error: what, where, what to do', () => {
    const err = Object.assign(new Error("EACCES: permission denied, mkdir '/srv/hb/state'"), { code: 'EACCES', syscall: 'mkdir', path: '/srv/hb/state' });
    expect(describeStateDirError('/srv/hb/state', err).message).toBe(
      'state_dir "/srv/hb/state": cannot create the directory: permission denied. ' +
        'Give the user running hbagg write access to it, or set state_dir (HBAGG_STATE_DIR) to a directory it can write.',
    );
  });

  it('runs the installed @nats-io/nuid on this Node although its engines field asks for Node 22', () => {
    const require = createRequire(import.meta.url);
    const pkg = require('@nats-io/nuid/package.json') as { version: string; engines: { node: string } };
    const { nuid } = require('@nats-io/nuid') as { nuid: { next(): string } };
    // What README promises: the only runtime need is Web Crypto, global since Node 19.
    expect(typeof globalThis.crypto?.getRandomValues).toBe('function');
    const ids = new Set(Array.from({ length: 10_000 }, () => nuid.next()));
    expect(ids.size).toBe(10_000);
    for (const id of [...ids].slice(0, 100)) expect(id).toMatch(/^[0-9A-Za-z]{22}$/);
    // If this changes, re-check README's note on the EBADENGINE warning.
    expect([pkg.version, pkg.engines.node]).toEqual(['3.0.0', '>= 22.x']);
  });
});
