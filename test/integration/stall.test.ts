/**
 * The local stall guard (docs/PROTOCOL.md 2.5): the daemon does not convict
 * workers for time it was not running. Workers beat from a child process, so
 * they keep beating while this process (which hosts the daemon) is blocked.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Ping } from '../../src/protocol/schemas.js';
import {
  sleep,
  startNatsServer,
  startPlatformStub,
  startTestDaemon,
  uniquePrefix,
  waitFor,
  type NatsServerHandle,
  type PlatformStub,
  type TestDaemon,
} from '../../testing/index.js';

const PUBLISHER = path.resolve(import.meta.dirname, '../fixtures/beat-publisher.ts');
const WORKERS = 50;

interface Publisher {
  child: ChildProcess;
  /** Stops beating and returns the beats sent per worker. */
  stop(): Promise<Record<string, number>>;
}

async function startPublisher(natsUrl: string, prefix: string): Promise<Publisher> {
  const child = spawn(process.execPath, ['--import', 'tsx', PUBLISHER], {
    env: { ...process.env, NATS_URL: natsUrl, SUBJECT_PREFIX: prefix, WORKERS: String(WORKERS), INTERVAL_MS: '1000' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  await waitFor(() => out.includes('"ready":true'), { timeoutMs: 15_000, message: 'publisher ready' });
  return {
    child,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      const line = out.split('\n').find((l) => l.startsWith('{"sent"'));
      return (JSON.parse(line ?? '{"sent":{}}') as { sent: Record<string, number> }).sent;
    },
  };
}

/**
 * Blocks this process's event loop, daemon included, for `ms`. It blocks in
 * the check phase (setImmediate), so the next turn of the loop runs its
 * timers, the daemon's loss check among them, before it reads the beats that
 * queued up on the socket meanwhile: the worst order for the daemon.
 */
function stallFor(ms: number): Promise<void> {
  return new Promise((resolve) =>
    setImmediate(() => {
      const end = performance.now() + ms;
      while (performance.now() < end) {
        // busy: no timer, no socket, nothing runs
      }
      resolve();
    }),
  );
}

describe('the local stall guard', () => {
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

  async function withBeatingWorkers(fn: (d: TestDaemon) => Promise<void>): Promise<{ lost: string[]; convicted: number; sent: Record<string, number>; counted: Record<string, number> }> {
    stub.clear();
    const prefix = uniquePrefix();
    const d = await startTestDaemon({
      natsUrl: nats.url,
      platformUrl: stub.url,
      env: { HBAGG_SUBJECT_PREFIX: prefix, HBAGG_LOST_AFTER_MIN_MS: '3000', HBAGG_MIN_INTERVAL_MS: '200', HBAGG_MAX_INTERVAL_MS: '1000', HBAGG_LOG_LEVEL: 'info' },
    });
    const pub = await startPublisher(nats.url, prefix);
    let sent: Record<string, number> = {};
    let convicted = 0;
    try {
      await waitFor(() => d.daemon.workers().filter((e) => e.state === 'active').length === WORKERS, { message: 'all workers active' });
      await sleep(1500);
      await fn(d);
      // Every conviction, even one a late beat took back before a ping could carry it.
      convicted = d.logs.filter((l) => l.msg === 'worker lost').length;
    } finally {
      sent = await pub.stop();
      await sleep(200);
      await d.stop();
    }
    const pings = stub.accepted().map((r) => r.body as Ping);
    const lost = [...new Set(pings.flatMap((p) => p.workers).filter((w) => w.state === 'lost').map((w) => w.worker))];
    const counted: Record<string, number> = {};
    for (const p of pings) for (const w of p.workers) counted[w.worker] = (counted[w.worker] ?? 0) + w.beats;
    return { lost, convicted, sent, counted };
  }

  it('reports no worker lost after the daemon was blocked for 3 s while its workers kept beating', async () => {
    let stalled = 0;
    const r = await withBeatingWorkers(async (d) => {
      await stallFor(3000);
      await sleep(2500); // the beats queued during the stall arrive; the next ones too
      stalled = (await d.daemon.snapshot()).stalls;
      const warn = d.logs.find((l) => l.msg === 'event loop stalled; the stalled time does not count toward loss');
      expect(Number(warn?.stalled_ms)).toBeGreaterThan(2500);
      expect((await d.daemon.snapshot()).workers.lost).toBe(0);
    });
    expect(stalled).toBe(1);
    expect(r.lost).toEqual([]);
    expect(r.convicted).toBe(0);
    const sent = Object.values(r.sent).reduce((a, b) => a + b, 0);
    const counted = Object.values(r.counted).reduce((a, b) => a + b, 0);
    console.info(`3 s stall, ${WORKERS} workers at 1 s: false lost ${r.lost.length}; beats sent ${sent}, counted ${counted}`);
    expect(counted).toBe(sent);
  }, 40_000);

  it('is what saves them: without it, the same stall convicts the workers', async () => {
    const r = await withBeatingWorkers(async (d) => {
      d.daemon.testHooks.disableStallGuard(); // the guard switched off
      await stallFor(3000);
      await sleep(2500);
    });
    console.info(`control, guard off: ${r.convicted}/${WORKERS} workers falsely convicted (${r.lost.length} reached the platform before their next beat took it back)`);
    expect(r.convicted).toBeGreaterThan(0);
  }, 40_000);

  it('ignores wall-clock jumps: an hour forward and back changes no worker state and no ping gap', async () => {
    const realNow = Date.now.bind(Date);
    let offset = 0;
    const spy = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + offset);
    try {
      const r = await withBeatingWorkers(async (d) => {
        const before = stub.accepted().length;
        offset = 3_600_000;
        await sleep(2000);
        offset = -3_600_000;
        await sleep(2000);
        offset = 0;
        expect((await d.daemon.snapshot()).workers.lost).toBe(0);
        // Pings kept going at their pace through both jumps (the gap is measured on the monotonic clock).
        expect(stub.accepted().length - before).toBeGreaterThanOrEqual(3);
      });
      expect(r.lost).toEqual([]);
      expect(r.convicted).toBe(0);
      console.info(`wall clock +1 h then -1 h: false lost ${r.lost.length}`);
    } finally {
      spy.mockRestore();
    }
  }, 40_000);
});
