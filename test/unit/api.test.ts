/** The package entry (`import 'hbagg'`): loading and checking a config given as an object. */
import { describe, expect, it } from 'vitest';
import { checkConfig, ConfigError, loadConfig } from '../../src/index.js';

describe('a config given as an object', () => {
  it('is compiled like a file with the same content, and the object is left as it was', () => {
    const input = { platform: { url: 'http://127.0.0.1:9/p' }, flush: { min_interval_ms: 500 } };
    const before = structuredClone(input);
    const config = loadConfig({ input, env: {} });
    expect(config.platform.url).toBe('http://127.0.0.1:9/p');
    expect(config.flush.minIntervalMs).toBe(500);
    expect(config.flush.maxIntervalMs).toBe(30_000);
    expect(input).toEqual(before);
  });

  it('is overridden by the environment, as a file is', () => {
    const config = loadConfig({ input: { flush: { min_interval_ms: 500 } }, env: { HBAGG_MIN_INTERVAL_MS: '700' } });
    expect(config.flush.minIntervalMs).toBe(700);
  });

  it('reports every bad key without throwing through checkConfig', () => {
    // What a JSON file read by the caller holds: not checked by the compiler.
    const input = JSON.parse('{"flush": {"min_interval_ms": "soon"}, "nope": 1}');
    const check = checkConfig({ input, env: {}, requirePlatformUrl: true });
    expect(check.ok).toBe(false);
    if (check.ok) return;
    expect(check.issues.map((i) => i.key).sort()).toEqual(['flush.min_interval_ms', 'nope', 'platform.url']);
  });

  it('refuses what is not plain data with a readable error', () => {
    expect(() => loadConfig({ input: { node_id: 1n } as never, env: {} })).toThrow(ConfigError);
    expect(() => loadConfig({ input: { node_id: 1n } as never, env: {} })).toThrow(/not plain JSON data/);
  });
});
