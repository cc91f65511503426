import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnHbagg, startNatsServer, startPlatformStub, waitFor, type NatsServerHandle, type PlatformStub } from '../../testing/index.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function hbagg(args: string[], env: Record<string, string> = {}, onStart?: (kill: (s: NodeJS.Signals) => void, out: () => string) => void): Promise<Run> {
  const child = spawnHbagg(args, env);
  onStart?.((s) => child.proc.kill(s), child.stdout);
  const code = await child.exited;
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

describe('the hbagg command', () => {
  it('check-config names every bad key and exits 2', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hbagg-cfg-'));
    const file = path.join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ flush: { min_interval_ms: 'fast' }, colour: 'blue' }));
    const r = await hbagg(['check-config', '--config', file], { HBAGG_MAX_INTERVAL_MS: 'abc' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('flush.min_interval_ms');
    expect(r.stderr).toContain('colour');
    expect(r.stderr).toContain('HBAGG_MAX_INTERVAL_MS');
  });

  it('check-config prints the effective config with secrets redacted', async () => {
    const r = await hbagg(['check-config'], { HBAGG_PLATFORM_URL: 'http://127.0.0.1:1/p', HBAGG_PLATFORM_TOKEN: 's3cret-tok' });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('s3cret-tok');
    expect(JSON.parse(r.stdout).platform.url).toBe('http://127.0.0.1:1/p');
  });

  it('run without a platform url is a configuration error (exit 2)', async () => {
    const r = await hbagg(['run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('platform.url');
  });

  it('an unknown command exits 2 with the usage', async () => {
    const r = await hbagg(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('usage');
  });

  describe('run', () => {
    let nats: NatsServerHandle;
    let stub: PlatformStub;
    beforeAll(async () => {
      nats = await startNatsServer();
      stub = await startPlatformStub();
    });
    afterAll(async () => {
      await stub?.close();
      await nats?.stop();
    });

    it('exits 0 on SIGTERM within shutdown_timeout_ms even when the platform hangs, after trying a final ping', async () => {
      stub.clear();
      stub.respondWith((_r, n) => (n === 1 ? { status: 200, body: {} } : { hang: true }));
      let sentAt = 0;
      const r = await hbagg(
        ['run'],
        {
          HBAGG_NATS_URL: nats.url,
          HBAGG_PLATFORM_URL: stub.url,
          HBAGG_PLATFORM_TOKEN: 'tok-never-logged',
          HBAGG_HTTP_LISTEN: '127.0.0.1:0',
          HBAGG_STATE_DIR: mkdtempSync(path.join(tmpdir(), 'hbagg-state-')),
          HBAGG_SHUTDOWN_TIMEOUT_MS: '2000',
        },
        (kill, out) => {
          void waitFor(() => out().includes('"nats ready"') && stub.accepted().length >= 1, { timeoutMs: 15_000 }).then(() => {
            sentAt = Date.now();
            kill('SIGTERM');
          });
        },
      );
      const took = Date.now() - sentAt;
      expect(r.code).toBe(0);
      expect(took).toBeLessThan(2000 + 1000);
      expect(r.stdout).toContain('"daemon stopped"');
      expect(r.stdout).not.toContain('tok-never-logged');
      const final = stub.requests.find((q) => (q.body as { batch?: { final?: boolean } }).batch?.final);
      expect(final).toBeDefined();
    });
  });
});
