/**
 * With NATS or the platform unreachable the log used to say
 * only "hbagg running". Now each outage is a warning naming the (redacted)
 * address, repeated at a bounded rate while it lasts, and its end one info line.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { createLogger } from '../../src/daemon/logger.js';
import { freePort, startNatsServer, startPlatformStub, uniquePrefix, waitFor, type NatsServerHandle, type PlatformStub } from '../../testing/index.js';

type Line = Record<string, unknown>;

function daemonWith(env: Record<string, string>, outageLogEveryMs?: number): { daemon: Daemon; logs: Line[] } {
  const cfg = loadConfig({
    requirePlatformUrl: true,
    env: {
      HBAGG_NODE_ID: 'test-node',
      HBAGG_HTTP_LISTEN: '127.0.0.1:0',
      HBAGG_STATE_DIR: mkdtempSync(path.join(tmpdir(), 'hbagg-state-')),
      HBAGG_LOG_LEVEL: 'trace',
      HBAGG_SUBJECT_PREFIX: uniquePrefix(),
      ...env,
    },
  });
  const logs: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as Line);
      done();
    },
  });
  return { daemon: new Daemon(cfg, createLogger(cfg.logLevel, sink), { outageLogEveryMs }), logs };
}

const withMsg = (logs: Line[], msg: string) => logs.filter((l) => l.msg === msg);

describe('outages are logged', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  it('warns naming the NATS server while it cannot be reached, at a bounded rate, and says when it connects', async () => {
    const stub: PlatformStub = await startPlatformStub();
    cleanup.push(() => stub.close());
    const port = await freePort();
    const { daemon, logs } = daemonWith({ HBAGG_NATS_URL: `nats://127.0.0.1:${port}`, HBAGG_PLATFORM_URL: stub.url }, 400);
    cleanup.push(() => daemon.stop());
    await daemon.start();
    await waitFor(() => withMsg(logs, 'nats is not reachable; retrying').length >= 2, { timeoutMs: 10_000 });
    const warns = withMsg(logs, 'nats is not reachable; retrying');
    expect(warns[0]).toMatchObject({ level: 'warn', servers: [`nats://127.0.0.1:${port}`] });
    // Rate-limited: about one per interval, not one per reconnect attempt (every 500 ms) or per tick.
    expect(Date.parse(String(warns[1]!.time)) - Date.parse(String(warns[0]!.time))).toBeGreaterThanOrEqual(350);
    const nats: NatsServerHandle = await startNatsServer({ port });
    cleanup.push(() => nats.stop());
    await waitFor(() => withMsg(logs, 'nats is reachable again').length === 1, { timeoutMs: 10_000 });
    expect(withMsg(logs, 'nats is reachable again')[0]).toMatchObject({ level: 'info', servers: [`nats://127.0.0.1:${port}`] });
  });

  it('warns once (within the interval) naming the redacted platform URL while pings fail, and says once when it is back', async () => {
    const nats = await startNatsServer();
    cleanup.push(() => nats.stop());
    const stub = await startPlatformStub();
    cleanup.push(() => stub.close());
    let failing = true;
    stub.respondWith(() => (failing ? { status: 500, body: 'down' } : { status: 200, body: {} }));
    const { daemon, logs } = daemonWith({
      HBAGG_NATS_URL: nats.url,
      HBAGG_PLATFORM_URL: `${stub.url}?api_key=k`,
      HBAGG_MIN_INTERVAL_MS: '50',
      HBAGG_MAX_INTERVAL_MS: '100',
      HBAGG_URGENT_FLUSH_MS: '10',
    });
    cleanup.push(() => daemon.stop());
    await daemon.start();
    await stub.waitForRequests(5, 10_000);
    failing = false;
    await waitFor(() => withMsg(logs, 'platform is accepting pings again').length === 1, { timeoutMs: 10_000 });
    const warns = withMsg(logs, 'platform is not accepting pings; will retry with backoff');
    expect(warns).toHaveLength(1);
    expect(warns[0]).toMatchObject({ level: 'warn', url: `${stub.url}?[redacted]`, status: 500 });
    expect(withMsg(logs, 'platform is accepting pings again')[0]).toMatchObject({ level: 'info', url: `${stub.url}?[redacted]` });
    // Each failure is still there at debug level, for whoever needs it.
    expect(withMsg(logs, 'ping not accepted; will retry').length).toBeGreaterThanOrEqual(5);
  });
});
