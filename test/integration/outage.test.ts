/**
 * A platform outage with 1,000 workers, time compressed (docs/PROTOCOL.md 2.7, 3):
 * memory stays flat (every try is rebuilt from the registry), every beat and
 * every terminal state reaches the platform after it returns, the catch-up
 * ping goes out within a second of its return, Retry-After is honoured, and
 * retries are jittered.
 */
import net from 'node:net';
import vm from 'node:vm';
import v8 from 'node:v8';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LeaveReply, Ping, PingWorker } from '../../src/protocol/schemas.js';
import type { Daemon } from '../../src/daemon/daemon.js';
import type { PingMetricOutcome } from '../../src/daemon/metrics.js';
import {
  natsClient,
  sleep,
  startNatsServer,
  startPlatformStub,
  startTestDaemon,
  waitFor,
  type NatsServerHandle,
  type RecordedPing,
} from '../../testing/index.js';

const body = (r: RecordedPing) => r.body as Ping;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/**
 * A TCP front for the platform stub that can refuse connections: down() closes
 * the listener and cuts every connection (the platform's host is gone), up()
 * listens again on the same port.
 */
async function switchableFront(targetPort: number) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1/heartbeats`,
    async down() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      await closed;
    },
    async up() {
      await new Promise<void>((r, j) => {
        server.once('error', j);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', j);
          r();
        });
      });
    },
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe('a platform outage', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await natsClient(nats.url);
  });

  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('with 1,000 workers keeps memory flat, delivers every beat and terminal state after it, and catches up within a second', async () => {
    const stub = await startPlatformStub();
    const front = await switchableFront(stub.port);
    // Compressed time: max_interval 10 s stands for 30 s; the outage is many of them.
    const d = await startTestDaemon({
      natsUrl: nats.url,
      platformUrl: front.url,
      env: { HBAGG_MIN_INTERVAL_MS: '100', HBAGG_MAX_INTERVAL_MS: '10000', HBAGG_LOST_AFTER_MIN_MS: '2000', HBAGG_LOG_LEVEL: 'info' },
    });
    const N = 1000;
    const instance = new Map<string, string>();
    const seq = new Map<string, number>();
    const published = new Map<string, number>(); // beats published per worker/instance
    const beating = new Set<string>();
    for (let i = 0; i < N; i++) {
      const w = `w${i}`;
      instance.set(w, 'i1');
      seq.set(w, 0);
      beating.add(w);
    }
    const publishRound = (slice: number) => {
      // A tenth of the workers every 100 ms: each beats once a second.
      for (let i = slice; i < N; i += 10) {
        const w = `w${i}`;
        if (!beating.has(w)) continue;
        const s = seq.get(w)! + 1;
        seq.set(w, s);
        const key = `${w}/${instance.get(w)}`;
        published.set(key, (published.get(key) ?? 0) + 1);
        nc.publish(`${d.prefix}.beat.${w}`, JSON.stringify({ v: 1, worker: w, instance: instance.get(w), seq: s, interval_ms: 1000 }));
      }
    };
    let running = true;
    const beats = (async () => {
      for (let round = 0; running; round++) {
        publishRound(round % 10);
        await sleep(100);
      }
    })();

    try {
      await waitFor(() => stub.accepted().some((r) => body(r).workers.length === N), { timeoutMs: 10_000, message: 'all 1000 seen' });

      // --- the platform goes away: connections refused ---
      await front.down();
      const outageStart = Date.now();
      const silent = Array.from({ length: 100 }, (_, i) => `w${i}`); // stop beating: lost
      const leaving = Array.from({ length: 100 }, (_, i) => `w${100 + i}`); // Leave stopped
      const restarting = Array.from({ length: 50 }, (_, i) => `w${200 + i}`); // new instance: old one lost
      for (const w of silent) beating.delete(w);
      const heap: number[] = [];
      const rss: number[] = [];
      const sample = () => {
        gc();
        const m = process.memoryUsage();
        heap.push(m.heapUsed / 2 ** 20);
        rss.push(m.rss / 2 ** 20);
      };
      const requestsBefore = stub.requests.length;
      const failedBefore = await pingCount(d.daemon, 'failed');
      for (let t = 1; t <= 16; t++) {
        await sleep(1000);
        if (t === 2) {
          for (const w of leaving) beating.delete(w);
          const replies = await Promise.all(
            leaving.map((w) =>
              nc.request(`${d.prefix}.leave.${w}`, JSON.stringify({ v: 1, worker: w, instance: 'i1', seq: seq.get(w)! + 1, phase: 'stopped' }), { timeout: 3000 }),
            ),
          );
          expect(replies.every((m) => m.json<LeaveReply>().ok)).toBe(true);
        }
        if (t === 4) {
          for (const w of restarting) {
            instance.set(w, 'i2');
            seq.set(w, 0);
          }
        }
        if (t >= 6) sample(); // after the outage's events: what remains must not grow
      }
      const tries = (await pingCount(d.daemon, 'failed')) - failedBefore;
      expect(stub.requests.length).toBe(requestsBefore); // nothing got through

      // --- the platform is back ---
      await front.up();
      const back = Date.now();
      const catchUp = await waitFor(() => stub.accepted().find((r) => r.receivedAt >= back), { timeoutMs: 5000, message: 'catch-up ping' });
      const catchUpMs = catchUp.receivedAt - back;

      // Drain: stop beating, let every published beat land, stop the daemon (final ping).
      running = false;
      await beats;
      await nc.flush();
      await waitFor(
        () => {
          const snap = new Map(d.daemon.workers().map((e) => [`${e.worker}/${e.instance}`, e.seq] as const));
          return [...beating].every((w) => snap.get(`${w}/${instance.get(w)}`) === seq.get(w));
        },
        { message: 'every beat applied' },
      );
      await d.stop();

      const accepted = stub.accepted().map(body);
      const counted = new Map<string, number>();
      const terminal = new Map<string, PingWorker>();
      for (const p of accepted) {
        for (const w of p.workers) {
          const k = `${w.worker}/${w.instance}`;
          counted.set(k, (counted.get(k) ?? 0) + w.beats);
          if (w.state === 'stopped' || w.state === 'lost') terminal.set(k, w);
        }
      }
      const missing = [...published].filter(([k, n]) => counted.get(k) !== n);
      const totalPublished = [...published.values()].reduce((a, b) => a + b, 0);
      const totalCounted = [...counted.values()].reduce((a, b) => a + b, 0);
      expect(missing).toEqual([]);
      expect(totalCounted).toBe(totalPublished);
      for (const w of silent) expect(terminal.get(`${w}/i1`)).toMatchObject({ state: 'lost', reason: 'heartbeat_timeout' });
      for (const w of leaving) expect(terminal.get(`${w}/i1`)?.state).toBe('stopped');
      for (const w of restarting) expect(terminal.get(`${w}/i1`)).toMatchObject({ state: 'lost', reason: 'restarted' });
      // The catch-up ping carried them all.
      const inCatchUp = new Set(body(catchUp).workers.filter((w) => w.state !== 'active').map((w) => w.worker));
      expect(inCatchUp.size).toBe(250);

      const growth = heap.at(-1)! - heap[0]!;
      console.info(
        `outage ${((back - outageStart) / 1000).toFixed(1)} s, 1000 workers: ${tries} refused tries; ` +
          `heap after GC ${heap.map((h) => h.toFixed(1)).join(' ')} MiB (growth ${growth.toFixed(2)}), ` +
          `rss ${rss[0]!.toFixed(0)} -> ${rss.at(-1)!.toFixed(0)} MiB; catch-up ${catchUpMs} ms after the platform returned; ` +
          `beats published ${totalPublished}, counted in accepted pings ${totalCounted}; ` +
          `terminal states delivered ${terminal.size} (lost 150, stopped 100 expected); ` +
          `journal: ${JSON.stringify((await d.daemon.snapshot()).journal)}`,
      );
      // Within a second by design (retries capped at 1 s while refused), plus slack for a busy CI machine.
      expect(catchUpMs).toBeLessThan(2000);
      // Flat: the daemon keeps state per worker, not per failed try (10 tries of a 1000-worker ping would be ~2.5 MiB).
      expect(growth).toBeLessThan(8);
    } finally {
      running = false;
      await beats;
      front.close();
      await d.stop();
      await stub.close();
    }
  }, 60_000);

  it('waits as long as Retry-After says, even with transitions pending, then returns within its jitter', async () => {
    const stub = await startPlatformStub();
    const retryAt = new Date(Date.now() + 3000);
    retryAt.setMilliseconds(0); // HTTP dates have whole seconds
    stub.respondWith((_r, n) =>
      n === 1 ? { status: 503, headers: { 'retry-after': '2' } }
      : n === 2 ? { status: 429, headers: { 'retry-after': retryAt.toUTCString() } }
      : { status: 200, body: {} },
    );
    const d = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, env: { HBAGG_MIN_INTERVAL_MS: '100', HBAGG_MAX_INTERVAL_MS: '400' } });
    try {
      const [first] = await stub.waitForRequests(1);
      // New workers during the hold: urgent, but a daemon told to wait, waits.
      for (let i = 0; i < 5; i++) nc.publish(`${d.prefix}.beat.n${i}`, JSON.stringify({ v: 1, worker: `n${i}`, instance: 'a', seq: 1, interval_ms: 1000 }));
      await nc.flush();
      const [, second, third] = await stub.waitForRequests(3, 10_000);
      const gap1 = second!.receivedAt - first!.receivedAt;
      expect(gap1).toBeGreaterThanOrEqual(2000);
      expect(gap1).toBeLessThan(2000 + 200 + 500); // at most 10% jitter, plus timer slack
      expect(third!.receivedAt).toBeGreaterThanOrEqual(retryAt.getTime() - 5);
      expect(body(third!).workers.map((w) => w.worker).sort()).toEqual(['n0', 'n1', 'n2', 'n3', 'n4']);
      console.info(`Retry-After 2 -> waited ${gap1} ms; HTTP date -> ${third!.receivedAt - retryAt.getTime()} ms after it`);
    } finally {
      await d.stop();
      await stub.close();
    }
  });

  it('jitters retries, so daemons failing together do not retry in step', async () => {
    const stub = await startPlatformStub();
    stub.respondWith({ status: 500, body: 'down' });
    const env = { HBAGG_MIN_INTERVAL_MS: '200', HBAGG_MAX_INTERVAL_MS: '800' };
    const daemons = await Promise.all([1, 2, 3].map(() => startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, env })));
    try {
      const instances = await Promise.all(daemons.map(async (d) => (await d.daemon.snapshot()).info.instance));
      await waitFor(() => instances.every((instance) => stub.requests.filter((r) => body(r).daemon.instance === instance).length >= 5), {
        timeoutMs: 15_000,
      });
    } finally {
      await Promise.all(daemons.map((d) => d.stop()));
      await stub.close();
    }
    const timesOf = (inst: string) =>
      stub.requests.filter((r) => body(r).daemon.instance === inst && !body(r).batch.final).map((r) => r.receivedAt).slice(0, 5);
    const series = await Promise.all(daemons.map(async (d) => timesOf((await d.daemon.snapshot()).info.instance)));
    const gaps = series.map((t) => t.slice(1).map((x, i) => x - t[i]!));
    // Exponential backoff with jitter: the k-th gap lies in [exp/2, exp] (+ slack), exp = 200, 400, 800, 800.
    for (const g of gaps) {
      g.forEach((gap, k) => {
        const exp = Math.min(800, 200 * 2 ** k);
        expect(gap).toBeGreaterThanOrEqual(exp / 2 - 5);
        expect(gap).toBeLessThan(exp + 500);
      });
    }
    // Three daemons, four gaps each: identical gaps everywhere would mean no jitter.
    const flat = gaps.flat();
    const spread = Math.max(...flat.slice(2)) - Math.min(...flat.slice(2));
    expect(new Set(flat.map((g) => Math.round(g / 20))).size).toBeGreaterThan(3);
    console.info(`retry gaps (ms) per daemon: ${gaps.map((g) => g.join(' ')).join(' | ')}; spread ${spread}`);
  }, 30_000);
});

async function pingCount(d: Daemon, outcome: PingMetricOutcome): Promise<number> {
  return (await d.snapshot()).pings[outcome] ?? 0;
}
