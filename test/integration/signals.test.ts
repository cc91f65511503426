/**
 * Signals reach a real `hbagg run` child process: SIGHUP
 * re-reads the log level, SIGUSR2 and SIGUSR1 are logged and ignored (no
 * inspector), and the daemon still stops cleanly on SIGTERM with its final ping.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  sleep,
  spawnHbagg,
  startNatsServer,
  startPlatformStub,
  uniquePrefix,
  waitFor,
  type NatsServerHandle,
  type PlatformStub,
} from '../../testing/index.js';

describe('signals to hbagg run', () => {
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

  it('re-reads the log level on SIGHUP, ignores SIGUSR2 and SIGUSR1 with a log line, and still stops cleanly on SIGTERM', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hbagg-signals-'));
    const config = path.join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ log_level: 'info' }));
    const child = spawnHbagg(['run', '--config', config], {
      HBAGG_NODE_ID: 'signals-node',
      HBAGG_NATS_URL: nats.url,
      HBAGG_PLATFORM_URL: stub.url,
      HBAGG_HTTP_LISTEN: '127.0.0.1:0',
      HBAGG_STATE_DIR: path.join(dir, 'state'),
      HBAGG_SUBJECT_PREFIX: uniquePrefix(),
      HBAGG_MIN_INTERVAL_MS: '200',
    });
    try {
      await waitFor(() => child.out().includes('"msg":"nats ready"'), { timeoutMs: 20_000, message: 'daemon ready' });

      writeFileSync(config, JSON.stringify({ log_level: 'debug' }));
      child.proc.kill('SIGHUP');
      await waitFor(() => child.out().includes('SIGHUP: log level re-read from the config'), { message: 'SIGHUP logged' });
      expect(child.out()).toMatch(/"from":"info","to":"debug"/);
      // The line itself is written at the new level: pino drops it unless debug is in force.
      expect(child.out()).toMatch(/"level":"debug"[^\n]*SIGHUP: log level re-read/);

      writeFileSync(config, '{ not json');
      child.proc.kill('SIGHUP');
      await waitFor(() => child.out().includes('SIGHUP: cannot re-read the config; log level unchanged'), { message: 'bad config on SIGHUP' });

      child.proc.kill('SIGUSR2');
      await waitFor(() => child.out().includes('SIGUSR2 ignored'), { message: 'SIGUSR2 logged' });
      child.proc.kill('SIGUSR1');
      await waitFor(() => child.out().includes('SIGUSR1 ignored'), { message: 'SIGUSR1 logged' });
      await sleep(300);
      expect(child.proc.exitCode).toBe(null);
      expect(child.out()).not.toContain('Debugger listening');

      child.proc.kill('SIGTERM');
      expect(await child.exited).toBe(0);
      expect(stub.requests.some((q) => (q.body as { batch?: { final?: boolean } }).batch?.final === true)).toBe(true);
    } finally {
      child.proc.kill('SIGKILL');
    }
  }, 60_000);
});
