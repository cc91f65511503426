import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactConfig } from '../../../src/config/index.js';

function load(platform: Record<string, unknown>) {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hbagg-cfg-')), 'c.json');
  fs.writeFileSync(file, JSON.stringify({ platform }));
  return loadConfig({ file, env: {} });
}

function issues(platform: Record<string, unknown>): string[] {
  try {
    load(platform);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => `${i.key}: ${i.message}`);
    throw err;
  }
  return [];
}

describe('platform.kind and platform.opencti', () => {
  it('defaults to the batched ping, and compiles the opencti section with its defaults', () => {
    const cfg = load({ kind: 'opencti', opencti: { connectors: { 'w-1': 'AAAAAAAA-0000-4000-8000-000000000001' } } });
    expect(cfg.platform.kind).toBe('opencti');
    expect(cfg.platform.opencti).toEqual({
      pingEveryMs: 120_000, aliasesPerRequest: 1, deleteOnStop: false, inactiveAfterMs: 300_000,
      connectors: { 'w-1': 'AAAAAAAA-0000-4000-8000-000000000001' },
    });
    expect(loadConfig({ env: {} }).platform.kind).toBe('hbagg');
    expect(loadConfig({ env: { HBAGG_PLATFORM_KIND: 'opencti' } }).platform.kind).toBe('opencti');
    expect((redactConfig(cfg) as { platform: { opencti: unknown } }).platform.opencti).toMatchObject({ ping_every_ms: 120_000 });
  });

  it('refuses a period that would let a healthy connector go inactive after one failed ping', () => {
    expect(issues({ kind: 'opencti', opencti: { ping_every_ms: 145_000 } })).toEqual([]);
    const [issue] = issues({ kind: 'opencti', opencti: { ping_every_ms: 145_001 } });
    expect(issue).toContain('platform.opencti.ping_every_ms');
    expect(issue).toContain('must be <= 145000');
    // A longer timeout leaves less room.
    expect(issues({ kind: 'opencti', timeout_ms: 30_000 })).toEqual([]);
    expect(issues({ kind: 'opencti', timeout_ms: 30_001 })[0]).toContain('must be <= 119999');
    // Irrelevant for the batched ping.
    expect(issues({ kind: 'hbagg', timeout_ms: 60_000 })).toEqual([]);
  });

  it('names each bad key', () => {
    const found = issues({
      kind: 'graphql',
      opencti: { aliases_per_request: 0, delete_on_stop: 'yes', connectors: { 'bad id!': 'x', ok: 'not-a-uuid' }, extra: 1 },
    });
    const keys = found.map((f) => f.split(':')[0]);
    expect(keys).toEqual(expect.arrayContaining([
      'platform.kind', 'platform.opencti.aliases_per_request', 'platform.opencti.delete_on_stop', 'platform.opencti.connectors.ok',
    ]));
    expect(found.join('\n')).toContain('expected a connector id (a UUID), got "not-a-uuid"');
    expect(found.join('\n')).toContain('extra');
  });
});
