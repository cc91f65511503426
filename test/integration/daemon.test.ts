import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  natsClient,
  sleep,
  startNatsServer,
  startPlatformStub,
  startTestDaemon,
  waitFor,
  type NatsServerHandle,
  type PlatformStub,
  type RecordedPing,
  type TestDaemon,
} from '../../testing/index.js';
import type { Ping } from '../../src/protocol/schemas.js';

const body = (r: RecordedPing) => r.body as Ping;

describe('the daemon against a real nats-server and platform', () => {
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

  async function withDaemon(
    env: Record<string, string>,
    fn: (d: TestDaemon, stub: PlatformStub) => Promise<void>,
    prepare?: (stub: PlatformStub) => void,
  ): Promise<void> {
    const stub = await startPlatformStub();
    prepare?.(stub);
    const d = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, env });
    try {
      await fn(d, stub);
    } finally {
      await d.stop();
      await stub.close();
    }
  }

  it('coalesces 200 workers beating at 10 Hz into few pings, counting every beat exactly once', async () => {
    await withDaemon({}, async (d, stub) => {
      const workers = 200;
      const rounds = 50; // 5 s at 10 Hz
      const started = Date.now();
      for (let seq = 1; seq <= rounds; seq++) {
        for (let w = 0; w < workers; w++) {
          nc.publish(`${d.prefix}.beat.w${w}`, JSON.stringify({ v: 1, worker: `w${w}`, instance: 'i1', seq, interval_ms: 100 }));
        }
        await nc.flush();
        await sleep(Math.max(0, started + seq * 100 - Date.now()));
      }
      await waitFor(() => d.daemon.workers().every((e) => e.seq === rounds), { message: 'all seqs applied' });
      await d.stop();

      const pings = stub.accepted().map(body);
      const beatsIn = workers * rounds;
      const counted = pings.flatMap((p) => p.workers).reduce((n, w) => n + w.beats, 0);
      expect(counted).toBe(beatsIn);
      const last = new Map<string, number>();
      for (const p of pings) for (const w of p.workers) last.set(w.worker, w.seq);
      expect(last.size).toBe(workers);
      expect([...last.values()].every((s) => s === rounds)).toBe(true);
      expect(pings.at(-1)?.batch.final).toBe(true);
      // Few pings: one per gap (1 s, 2 s, ...) plus the urgent ones for appearances.
      expect(pings.length).toBeLessThan(15);
      const gaps = pings.slice(1).map((p, i) => p.batch.sent_at - pings[i]!.batch.sent_at);
      console.info(`200 workers x 10 Hz: beats in ${beatsIn}, pings out ${pings.length}, gaps ms ${gaps.join(' ')}`);
    });
  });

  it('grows the gap between pings while nothing changes, and keeps its promise', async () => {
    await withDaemon({ HBAGG_MIN_INTERVAL_MS: '100', HBAGG_MAX_INTERVAL_MS: '800', HBAGG_URGENT_FLUSH_MS: '20' }, async (_d, stub) => {
      await waitFor(() => stub.accepted().length >= 6, { timeoutMs: 10_000 });
      const pings = stub.accepted().map(body);
      const gaps = pings.slice(1).map((p, i) => p.batch.sent_at - pings[i]!.batch.sent_at);
      // 100, 200, 400, 800, 800 (timers may run late, never early)
      expect(gaps[0]).toBeGreaterThanOrEqual(95);
      for (let i = 1; i < gaps.length; i++) expect(gaps[i]!).toBeGreaterThanOrEqual(Math.min(gaps[i - 1]!, 800) - 5);
      expect(gaps.at(-1)).toBeGreaterThanOrEqual(790);
      pings.slice(0, -1).forEach((p, i) => expect(gaps[i]!).toBeLessThanOrEqual(p.batch.next_ping_within_ms));
    });
  });

  it('pings at once when a worker appears, and resets the gap', async () => {
    await withDaemon({ HBAGG_MIN_INTERVAL_MS: '200', HBAGG_MAX_INTERVAL_MS: '5000' }, async (d, stub) => {
      await waitFor(() => stub.accepted().length >= 3, { timeoutMs: 10_000 });
      const sentAt = Date.now();
      nc.publish(`${d.prefix}.beat.fresh`, JSON.stringify({ v: 1, worker: 'fresh', instance: 'a', seq: 1, interval_ms: 1000 }));
      const ping = await waitFor(() => stub.accepted().map(body).find((p) => p.workers.some((w) => w.worker === 'fresh')));
      expect(ping.batch.sent_at - sentAt).toBeLessThan(500);
    });
  });

  it('honours a 503 with Retry-After before pinging again', async () => {
    const answer503First = (stub: PlatformStub) =>
      stub.respondWith((_req, n) => (n === 1 ? { status: 503, headers: { 'retry-after': '2' }, body: 'busy' } : { status: 200, body: {} }));
    await withDaemon({ HBAGG_MIN_INTERVAL_MS: '100', HBAGG_MAX_INTERVAL_MS: '400' }, async (_d, stub) => {
      const [first, second] = await stub.waitForRequests(2, 10_000);
      expect(first!.status).toBe(503);
      expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(2_000);
      // A retry is rebuilt, never replayed: a new batch id.
      expect(body(second!).batch.id).not.toBe(body(first!).batch.id);
    }, answer503First);
  });

  it('cannot be held past its shutdown timeout by a hanging platform', async () => {
    const stub = await startPlatformStub();
    stub.respondWith({ hang: true });
    const d = await startTestDaemon({
      natsUrl: nats.url,
      platformUrl: stub.url,
      env: { HBAGG_SHUTDOWN_TIMEOUT_MS: '1500' },
    });
    await stub.waitForRequests(1);
    const t0 = Date.now();
    await d.stop();
    const took = Date.now() - t0;
    await stub.close();
    expect(took).toBeLessThan(1500 + 300);
    expect(d.daemon.state).toBe('stopped');
    // The hanging ping was cut short so the final ping could still be tried.
    expect(body(stub.requests.at(-1)!).batch.final).toBe(true);
  });

  it('logs a summary on its cron schedule: beats in, pings out, workers by state, rejections by reason', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'hbagg-cfg-')), 'hbagg.json');
    writeFileSync(file, JSON.stringify({ housekeeping: { summary_cron: '* * * * * *' } }));
    const stub = await startPlatformStub();
    const d = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, file });
    try {
      for (let seq = 1; seq <= 3; seq++) nc.publish(`${d.prefix}.beat.sum`, JSON.stringify({ v: 1, worker: 'sum', instance: 'a', seq, interval_ms: 1000 }));
      nc.publish(`${d.prefix}.beat.sum`, 'garbage');
      await nc.flush();
      const line = await waitFor(() => d.logs.find((l) => l.msg === 'summary' && (l.beats_in as number) > 0), { timeoutMs: 5000 });
      expect(line).toMatchObject({ beats_in: 3, workers: { active: 1, draining: 0, stopped: 0, lost: 0 }, rejected_total: { invalid_json: 1 } });
      expect(line.pings_out).toBeGreaterThanOrEqual(1);
    } finally {
      await d.stop();
      await stub.close();
    }
  });

  it('rejects bad messages by reason while valid workers are unaffected', async () => {
    await withDaemon({}, async (d, stub) => {
      const p = d.prefix;
      const good = (seq: number) => JSON.stringify({ v: 1, worker: 'good', instance: 'g', seq, interval_ms: 1000 });
      const bad: [string, string | Uint8Array][] = [
        [`${p}.beat.x`, 'not json'],
        [`${p}.beat.x`, new Uint8Array([0xff, 0xfe, 0x00])],
        [`${p}.beat.x`, JSON.stringify({ v: 2, worker: 'x', instance: 'a', seq: 1, interval_ms: 1000 })],
        [`${p}.beat.x`, JSON.stringify({ v: 1, worker: 'x', instance: 'a', seq: -1, interval_ms: 1000 })],
        [`${p}.beat.x`, JSON.stringify({ v: 1, worker: 'y', instance: 'a', seq: 1, interval_ms: 1000 })],
        [`${p}.beat.x`, JSON.stringify({ v: 1, worker: 'x', instance: 'a', seq: 1, interval_ms: 1000, meta: { pad: 'z'.repeat(9000) } })],
        [`${p}.beat.good`, good(1)], // duplicate of seq 1 below: stale
      ];
      nc.publish(`${p}.beat.good`, good(1));
      for (const [subject, data] of bad) nc.publish(subject, data);
      nc.publish(`${p}.beat.good`, good(2));
      await nc.flush();
      await waitFor(() => d.daemon.workers().find((w) => w.worker === 'good')?.seq === 2);
      const metrics = await (await fetch(`${d.base}/metrics`)).text();
      const count = (reason: string) => Number(new RegExp(`hbagg_beats_rejected_total\\{reason="${reason}"\\} (\\d+)`).exec(metrics)?.[1]);
      expect(count('invalid_json')).toBe(2);
      expect(count('unsupported_version')).toBe(1);
      expect(count('invalid_schema')).toBe(1);
      expect(count('worker_mismatch')).toBe(1);
      expect(count('too_large')).toBe(1);
      expect(count('stale')).toBe(1);
      expect(metrics).toMatch(/hbagg_beats_accepted_total 2\b/);
      const workers = d.daemon.workers();
      expect(workers.map((w) => w.worker)).toEqual(['good']);
      expect(workers[0]!.beats + stub.accepted().map(body).flatMap((b) => b.workers).reduce((n, w) => n + w.beats, 0)).toBe(2);
    });
  });
});
