import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rosterOf } from '../../src/core/roster.js';
import type { Ping } from '../../src/protocol/schemas.js';
import {
  natsClient,
  startNatsServer,
  startPlatformStub,
  startTestDaemon,
  waitFor,
  type NatsServerHandle,
  type PlatformStub,
  type RecordedPing,
  type TestDaemon,
} from '../../testing/index.js';

const body = (r: RecordedPing) => r.body as Ping;

function configFile(cfg: object): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'hbagg-cfg-')), 'hbagg.json');
  writeFileSync(file, JSON.stringify(cfg));
  return file;
}

describe('the platform side of the contract', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  const open: { d?: TestDaemon; stub?: PlatformStub }[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await natsClient(nats.url);
  });
  afterAll(async () => {
    for (const o of open) {
      await o.d?.stop();
      await o.stub?.close();
    }
    await nc?.close();
    await nats?.stop();
  });

  async function setup(cfg: object, env: Record<string, string>, prepare?: (s: PlatformStub) => void) {
    const stub = await startPlatformStub();
    prepare?.(stub);
    const d = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, env, file: configFile(cfg) });
    open.push({ d, stub });
    return { d, stub };
  }

  function beatAll(d: TestDaemon, n: number, seq = 1) {
    for (let i = 0; i < n; i++) {
      nc.publish(`${d.prefix}.beat.w${i}`, JSON.stringify({ v: 1, worker: `w${i}`, instance: 'a', seq, interval_ms: 1000 }));
    }
    return nc.flush();
  }

  it('sends the idempotency key, the bearer token and JSON', async () => {
    const { stub } = await setup({}, { HBAGG_PLATFORM_TOKEN: 'plat-tok' });
    const [req] = await stub.waitForRequests(1);
    expect(req!.headers['content-type']).toBe('application/json');
    expect(req!.headers.authorization).toBe('Bearer plat-tok');
    expect(req!.headers['idempotency-key']).toBe(body(req!).batch.id);
    expect(body(req!)).toMatchObject({ v: 1, node: 'test-node', batch: { seq: 1, part: 1, parts: 1, final: false }, workers: [] });
  });

  it('splits a ping over max_batch_workers into parts sharing seq, each with its own id', async () => {
    const { d, stub } = await setup({ platform: { max_batch_workers: 10 } }, {});
    await stub.waitForRequests(1);
    await beatAll(d, 25);
    const parts = await waitFor(() => {
      const bySeq = new Map<number, Ping[]>();
      for (const p of stub.accepted().map(body)) bySeq.set(p.batch.seq, [...(bySeq.get(p.batch.seq) ?? []), p]);
      return [...bySeq.values()].find((ps) => ps.length === 3 && ps.flatMap((p) => p.workers).length === 25);
    });
    expect(parts.map((p) => [p.batch.part, p.batch.parts, p.workers.length])).toEqual([[1, 3, 10], [2, 3, 10], [3, 3, 5]]);
    expect(new Set(parts.map((p) => p.batch.id)).size).toBe(3);
  });

  it('halves the part size on 413 and resends', async () => {
    const { d, stub } = await setup({ platform: { max_batch_workers: 40 } }, {}, (s) =>
      s.respondWith((req) => ((body(req).workers?.length ?? 0) > 12 ? { status: 413, body: 'too big' } : { status: 200, body: {} })),
    );
    await stub.waitForRequests(1);
    await beatAll(d, 30);
    await waitFor(() => {
      const seen = new Set(stub.accepted().flatMap((r) => body(r).workers.map((w) => w.worker)));
      return seen.size === 30;
    });
    const sizes = stub.requests.map((r) => [r.status, body(r).workers.length]);
    // 40 -> 20 -> 10: 413 twice, then parts of at most 10 accepted.
    expect(sizes.filter(([s]) => s === 413).length).toBeGreaterThanOrEqual(2);
    expect(stub.accepted().every((r) => body(r).workers.length <= 10)).toBe(true);
  });

  it('counts another 4xx, keeps the state and retries with backoff', async () => {
    const { d, stub } = await setup({}, { HBAGG_MIN_INTERVAL_MS: '100', HBAGG_MAX_INTERVAL_MS: '400' }, (s) =>
      s.respondWith((_r, n) => (n <= 3 ? { status: 422, body: { error: 'nope' } } : { status: 200, body: {} })),
    );
    await beatAll(d, 1);
    await beatAll(d, 1, 2);
    await waitFor(() => stub.accepted().some((r) => body(r).workers.some((w) => w.worker === 'w0')), { timeoutMs: 10_000 });
    const delivered = stub.accepted().flatMap((r) => body(r).workers).filter((w) => w.worker === 'w0');
    expect(delivered.reduce((n, w) => n + w.beats, 0)).toBe(2);
    const metrics = await (await fetch(`${d.base}/metrics`)).text();
    expect(metrics).toMatch(/hbagg_pings_total\{outcome="rejected"\} 3/);
  });

  it('aborts a request that passes its timeout and backs off', async () => {
    const { stub } = await setup({ platform: { timeout_ms: 300 } }, { HBAGG_MIN_INTERVAL_MS: '100', HBAGG_MAX_INTERVAL_MS: '400' }, (s) =>
      s.respondWith((_r, n) => (n === 1 ? { hang: true } : { status: 200, body: {} })),
    );
    const [first, second] = await stub.waitForRequests(2, 10_000);
    const gap = second!.receivedAt - first!.receivedAt;
    expect(gap).toBeGreaterThanOrEqual(300);
    expect(gap).toBeLessThan(300 + 1000);
  });

  it('takes next_interval_ms from a 2xx as a floor on the gap', async () => {
    const { stub } = await setup({}, { HBAGG_MIN_INTERVAL_MS: '100', HBAGG_MAX_INTERVAL_MS: '5000' }, (s) =>
      s.respondWith({ status: 200, body: { next_interval_ms: 1500 } }),
    );
    const [a, b] = await stub.waitForRequests(2, 10_000);
    expect(b!.receivedAt - a!.receivedAt).toBeGreaterThanOrEqual(1450);
    expect(body(a!).batch.next_ping_within_ms).toBeGreaterThanOrEqual(b!.receivedAt - a!.receivedAt);
  });

  it('sends deltas while every 2xx offers them; a 409 to a delta brings a full ping at once, not a backoff (PROTOCOL.md 3.1)', async () => {
    const modes = (r: RecordedPing) => body(r).batch.mode;
    const { d, stub } = await setup({}, { HBAGG_MIN_INTERVAL_MS: '100', HBAGG_MAX_INTERVAL_MS: '300' }, (s) =>
      s.respondWith((_r, n) => (n === 3 ? { status: 409, body: { resync: true } } : n >= 6 ? { status: 200, body: {} } : { status: 200, body: { delta: true } })),
    );
    await beatAll(d, 3);
    const reqs = await stub.waitForRequests(7, 15_000);
    expect(reqs.slice(0, 7).map(modes)).toEqual(['full', 'delta', 'delta', 'full', 'delta', 'delta', 'full']);
    // Every part carries the roster; the delta names the last completely accepted ping as its base.
    expect(body(reqs[1]!).batch.base).toBe(body(reqs[0]!).batch.seq);
    expect(body(reqs[1]!).roster).toEqual(rosterOf(['w0', 'w1', 'w2'].map((worker) => ({ worker, instance: 'a', state: 'active' as const }))));
    // The full ping after the 409 is paced by min_interval_ms, not by backoff.
    expect(reqs[3]!.receivedAt - reqs[2]!.receivedAt).toBeLessThan(1000);
    const metrics = await (await fetch(`${d.base}/metrics`)).text();
    expect(metrics).toMatch(/hbagg_pings_total\{outcome="resync"\} 1/);
    expect(metrics).not.toMatch(/hbagg_pings_total\{outcome="(failed|rejected)"\}/);
  });

  it('sends v1 pings (no mode, no roster) with platform.delta off, even to a platform that offers deltas', async () => {
    const { stub } = await setup({ platform: { delta: 'off' } }, { HBAGG_MIN_INTERVAL_MS: '100', HBAGG_MAX_INTERVAL_MS: '200' }, (s) =>
      s.respondWith({ status: 200, body: { delta: true } }),
    );
    const reqs = await stub.waitForRequests(3, 10_000);
    for (const r of reqs) {
      expect(body(r).batch.mode).toBeUndefined();
      expect(body(r).roster).toBeUndefined();
    }
  });
});
