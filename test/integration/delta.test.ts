/**
 * Delta pings (PROTOCOL.md 3.1) between a real daemon and the real reference
 * receiver, over a real nats-server: 1,000 steady workers ride on empty
 * deltas (the node's lease renewal), one status change is listed alone, a
 * Leave is listed alone, a full ping still comes every `full_every_ms`, and
 * a receiver that refuses deltas (`--no-delta`) gets full pings only, and a
 * delta lost on the way or a forged roster is detected and repaired by a
 * full ping.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rosterOf } from '../../src/core/roster.js';
import type { Ping } from '../../src/protocol/schemas.js';
import { startReceiver, type Receiver } from '../../src/receiver/index.js';
import { natsClient, startNatsServer, startTestDaemon, waitFor, type NatsServerHandle, type TestDaemon } from '../../testing/index.js';

const W = 1000;
const FULL_EVERY_MS = 4000;

/**
 * Between the daemon and the receiver: passes pings on, except that `tamper`
 * may swallow one (answering 200 with a delta offer, as if delivered) or
 * rewrite it.
 */
async function startProxy(target: string, tamper: (ping: Ping) => 'pass' | 'swallow' | Ping): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const ping = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Ping;
      const verdict = tamper(ping);
      if (verdict === 'swallow') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true,"delta":true}');
        return;
      }
      const body = JSON.stringify(verdict === 'pass' ? ping : verdict);
      void fetch(target, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': ping.batch.id }, body }).then(
        async (r) => res.writeHead(r.status, { 'content-type': 'application/json' }).end(await r.text()),
        () => res.writeHead(502).end(),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/v1/heartbeats`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

interface Seen {
  ping: Ping;
  bytes: number;
  at: number;
}

describe('delta pings with the reference receiver', () => {
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

  /** Beats every worker of `ids` every 400 ms (status from `status`) until stopped. */
  function beatLoop(d: TestDaemon, ids: Set<string>, status: Map<string, string>) {
    let seq = 0;
    const tick = () => {
      seq++;
      for (const w of ids) {
        nc.publish(`${d.prefix}.beat.${w}`, JSON.stringify({ v: 1, worker: w, instance: 'i1', seq, interval_ms: 1000, status: status.get(w) ?? 'idle', inflight: seq % 3 }));
      }
    };
    tick();
    const timer = setInterval(tick, 400);
    return { stop: () => clearInterval(timer), seq: () => seq };
  }

  it('pings 1,000 steady workers as empty deltas, lists one change or one Leave alone, and sends a full ping every full_every_ms', async () => {
    const seen: Seen[] = [];
    const r: Receiver = await startReceiver({ onPing: (ping, bytes) => seen.push({ ping, bytes, at: performance.now() }) });
    const d = await startTestDaemon({
      natsUrl: nats.url,
      platformUrl: `${r.url}/v1/heartbeats`,
      env: { HBAGG_MIN_INTERVAL_MS: '200', HBAGG_MAX_INTERVAL_MS: '500', HBAGG_URGENT_FLUSH_MS: '20', HBAGG_FULL_EVERY_MS: String(FULL_EVERY_MS), HBAGG_LOG_LEVEL: 'info' },
    });
    const ids = new Set(Array.from({ length: W }, (_, i) => `w${i}`));
    const status = new Map<string, string>();
    const loop = beatLoop(d, ids, status);
    try {
      const after = (i: number) => seen.slice(i);
      const emptyDelta = (s: Seen) => s.ping.batch.mode === 'delta' && s.ping.workers.length === 0;
      await waitFor(() => r.stats().workers.active === W, { timeoutMs: 20_000, message: 'all workers at the receiver' });
      await waitFor(() => seen.some((s) => emptyDelta(s) && s.ping.roster?.count === W), { timeoutMs: 20_000, message: 'an empty delta for 1,000 workers' });
      const empty = seen.find((s) => emptyDelta(s) && s.ping.roster?.count === W)!;
      expect(empty.bytes).toBeLessThan(500);
      expect(empty.ping.roster).toEqual(rosterOf([...ids].map((worker) => ({ worker, instance: 'i1', state: 'active' as const }))));

      // One status change: the next deltas list w5 alone.
      let mark = seen.length;
      status.set('w5', 'busy');
      await waitFor(() => after(mark).some((s) => s.ping.batch.mode === 'delta' && s.ping.workers.length > 0), { timeoutMs: 10_000, message: 'a delta with the change' });
      const change = after(mark).find((s) => s.ping.batch.mode === 'delta' && s.ping.workers.length > 0)!;
      expect(change.ping.workers.map((w) => [w.worker, w.status])).toEqual([['w5', 'busy']]);

      // A Leave: listed alone, and the roster shrinks by one.
      mark = seen.length;
      ids.delete('w7');
      const reply = await nc.request(`${d.prefix}.leave.w7`, JSON.stringify({ v: 1, worker: 'w7', instance: 'i1', seq: loop.seq() + 1, phase: 'stopped' }), { timeout: 5000 });
      expect(reply.json()).toMatchObject({ ok: true, state: 'stopped' });
      await waitFor(() => after(mark).some((s) => s.ping.workers.some((w) => w.worker === 'w7')), { timeoutMs: 10_000, message: 'the Leave at the receiver' });
      const leave = after(mark).find((s) => s.ping.workers.some((w) => w.worker === 'w7'))!;
      expect(leave.ping.batch.mode).toBe('delta');
      expect(leave.ping.workers.map((w) => [w.worker, w.state])).toEqual([['w7', 'stopped']]);
      expect(leave.ping.roster?.count).toBe(W - 1);

      // Full pings keep coming, each listing every live worker, about full_every_ms apart.
      mark = seen.length;
      const fulls = () => after(mark).filter((s) => s.ping.batch.mode === 'full' && s.ping.batch.part === 1);
      await waitFor(() => fulls().length >= 2, { timeoutMs: 4 * FULL_EVERY_MS + 10_000, message: 'two more full pings' });
      const [f1, f2] = fulls();
      const listed = (s: Seen) => seen.filter((x) => x.ping.batch.seq === s.ping.batch.seq).reduce((n, x) => n + x.ping.workers.length, 0);
      expect(listed(f1!)).toBe(W - 1);
      // Counted from the start of the last full ping (its sent_at), not from when it arrived.
      expect(f2!.ping.batch.sent_at - f1!.ping.batch.sent_at).toBeGreaterThanOrEqual(FULL_EVERY_MS - 5);
      expect(f2!.ping.batch.sent_at - f1!.ping.batch.sent_at).toBeLessThan(FULL_EVERY_MS + 3000);
      const deltasBetween = seen.filter((s) => s.ping.batch.mode === 'delta' && s.at > f1!.at && s.at < f2!.at);
      expect(deltasBetween.length).toBeGreaterThan(0);
      expect(r.stats()).toMatchObject({ conflicts: 0, resyncs: 0 });
    } finally {
      loop.stop();
      await d.stop();
      await r.close();
    }
  }, 90_000);

  it('sends only full pings to a receiver that does not offer deltas (--no-delta)', async () => {
    const seen: Seen[] = [];
    const r = await startReceiver({ delta: false, onPing: (ping, bytes) => seen.push({ ping, bytes, at: performance.now() }) });
    const d = await startTestDaemon({
      natsUrl: nats.url, platformUrl: `${r.url}/v1/heartbeats`,
      env: { HBAGG_MIN_INTERVAL_MS: '200', HBAGG_MAX_INTERVAL_MS: '300', HBAGG_URGENT_FLUSH_MS: '20', HBAGG_LOG_LEVEL: 'info' },
    });
    const ids = new Set(['a', 'b', 'c']);
    const loop = beatLoop(d, ids, new Map());
    try {
      await waitFor(() => seen.length >= 5, { timeoutMs: 15_000, message: 'five pings' });
      expect(seen.every((s) => s.ping.batch.mode === 'full')).toBe(true);
      expect(seen.at(-1)!.ping.workers).toHaveLength(3);
    } finally {
      loop.stop();
      await d.stop();
      await r.close();
    }
  }, 30_000);

  it('repairs a delta lost on the way and a forged roster: a 409 or a resync, then a full ping, then deltas again', async () => {
    const seen: Seen[] = [];
    const r = await startReceiver({ onPing: (ping, bytes) => seen.push({ ping, bytes, at: performance.now() }) });
    let mischief: 'lose' | 'forge' | undefined;
    const proxy = await startProxy(`${r.url}/v1/heartbeats`, (ping) => {
      if (ping.batch.mode !== 'delta' || ping.workers.length === 0 || mischief === undefined) return 'pass';
      const what = mischief;
      mischief = undefined;
      if (what === 'lose') return 'swallow';
      return { ...ping, roster: { count: ping.roster!.count, xor: 'ffffffffffffffff' } };
    });
    const d = await startTestDaemon({
      natsUrl: nats.url, platformUrl: proxy.url,
      env: { HBAGG_MIN_INTERVAL_MS: '200', HBAGG_MAX_INTERVAL_MS: '300', HBAGG_URGENT_FLUSH_MS: '20', HBAGG_LOG_LEVEL: 'info' },
    });
    const ids = new Set(Array.from({ length: 20 }, (_, i) => `w${i}`));
    const status = new Map<string, string>();
    const loop = beatLoop(d, ids, status);
    const fullAfter = (i: number) => seen.slice(i).some((s) => s.ping.batch.mode === 'full');
    const deltaAfterFull = (i: number) => {
      const later = seen.slice(i);
      const f = later.findIndex((s) => s.ping.batch.mode === 'full');
      return f >= 0 && later.slice(f).some((s) => s.ping.batch.mode === 'delta');
    };
    const statusAtReceiver = (w: string) => seen.filter((s) => s.ping.workers.some((x) => x.worker === w)).at(-1)?.ping.workers.find((x) => x.worker === w)?.status;
    try {
      await waitFor(() => seen.some((s) => s.ping.batch.mode === 'delta'), { timeoutMs: 15_000, message: 'deltas flowing' });

      // A lost delta: the receiver never sees w3 turn busy; the next delta names a base it never applied.
      let mark = seen.length;
      mischief = 'lose';
      status.set('w3', 'busy');
      await waitFor(() => r.stats().conflicts >= 1, { timeoutMs: 10_000, message: 'a 409 for the delta after the lost one' });
      await waitFor(() => fullAfter(mark) && statusAtReceiver('w3') === 'busy', { timeoutMs: 10_000, message: 'a full ping repairing w3' });
      await waitFor(() => deltaAfterFull(mark), { timeoutMs: 10_000, message: 'deltas again after the full ping' });

      // A forged roster: the receiver applies the delta but answers resync; the next ping is full.
      mark = seen.length;
      mischief = 'forge';
      status.set('w4', 'busy');
      await waitFor(() => r.stats().resyncs >= 1, { timeoutMs: 10_000, message: 'a resync answer' });
      await waitFor(() => fullAfter(mark) && deltaAfterFull(mark), { timeoutMs: 10_000, message: 'a full ping, then deltas again' });
      expect(statusAtReceiver('w4')).toBe('busy');
      const snap = await d.daemon.snapshot();
      expect(snap.pings.resync ?? 0).toBeGreaterThanOrEqual(1);
    } finally {
      loop.stop();
      await d.stop();
      await proxy.close();
      await r.close();
    }
  }, 60_000);
});
