/**
 * A brief 413 used to shrink parts to one entry forever,
 * resend at once, and promise a lease of parts x timeout; one entry the
 * platform would never take blocked every ping after it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
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
const MIN_MS = 200;
const MAX_MS = 400;
const TIMEOUT_MS = 1000;

function configFile(cfg: object): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'hbagg-cfg-')), 'hbagg.json');
  writeFileSync(file, JSON.stringify(cfg));
  return file;
}

describe('413 from the platform', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  const open: { d: TestDaemon; stub: PlatformStub }[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await natsClient(nats.url);
  });
  afterEach(async () => {
    for (const o of open.splice(0)) {
      await o.d.stop();
      await o.stub.close();
    }
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  async function setup(respond: (req: RecordedPing) => { status: number; body?: unknown }) {
    const stub = await startPlatformStub();
    stub.respondWith(respond);
    const d = await startTestDaemon({
      natsUrl: nats.url,
      platformUrl: stub.url,
      file: configFile({
        platform: { max_batch_workers: 40, timeout_ms: TIMEOUT_MS },
        flush: { min_interval_ms: MIN_MS, max_interval_ms: MAX_MS, urgent_flush_ms: 20 },
        workers: { lost_after_min_ms: 60_000 },
      }),
    });
    open.push({ d, stub });
    return { d, stub };
  }

  function beatAll(d: TestDaemon, names: string[], meta: Record<string, string> = {}) {
    for (const w of names) {
      nc.publish(`${d.prefix}.beat.${w}`, JSON.stringify({ v: 1, worker: w, instance: 'i1', seq: 1, interval_ms: 60_000, meta }));
    }
    return nc.flush();
  }

  it('splits paced after a brief 413, grows the parts back, and caps the promised lease', async () => {
    let refusing = true;
    const { d, stub } = await setup((req) => (refusing && body(req).workers.length > 8 ? { status: 413, body: 'too big' } : { status: 200, body: {} }));
    await stub.waitForRequests(1);
    const names = Array.from({ length: 30 }, (_, i) => `w${i}`);
    await beatAll(d, names);
    // 30 -> 15 -> 7: two refusals, then parts of 7 are accepted.
    await waitFor(() => new Set(stub.accepted().flatMap((r) => body(r).workers.map((w) => w.worker))).size === 30, { timeoutMs: 10_000 });
    refusing = false;
    // Grows back once the refused size is forgotten (10 x max_interval_ms): one part of all 30 again.
    await waitFor(() => stub.accepted().some((r) => body(r).workers.length === 30), { timeoutMs: 20_000, message: 'parts never grew back' });
    const reqs = stub.requests;
    for (let i = 1; i < reqs.length; i++) {
      // Each resend after a 413 waits about min_interval_ms (the old daemon resent at once).
      if (reqs[i - 1]!.status === 413) expect(reqs[i]!.receivedAt - reqs[i - 1]!.receivedAt).toBeGreaterThanOrEqual(MIN_MS * 0.8);
    }
    for (const r of reqs) expect(body(r).batch.next_ping_within_ms).toBeLessThanOrEqual(2 * MAX_MS + TIMEOUT_MS + 250);
  });

  it('drops an entry the platform refuses on its own, counts it, and delivers everyone else', async () => {
    const { d, stub } = await setup((req) =>
      body(req).workers.some((w) => w.worker === 'big') ? { status: 413, body: 'entry too big' } : { status: 200, body: {} },
    );
    await stub.waitForRequests(1);
    await beatAll(d, Array.from({ length: 12 }, (_, i) => `w${i}`));
    await beatAll(d, ['big'], { blob: 'x'.repeat(2000) });
    await waitFor(() => d.logs.some((l) => String(l.msg).startsWith('platform refused a ping entry on its own')), { timeoutMs: 10_000 });
    await waitFor(() => new Set(stub.accepted().flatMap((r) => body(r).workers.map((w) => w.worker))).size === 12, { timeoutMs: 10_000 });
    const metrics = await (await fetch(`${d.base}/metrics`)).text();
    expect(metrics).toMatch(/hbagg_ping_entries_rejected_total\{state="active"\} 1/);
    // Not retried: later pings go out without it (three quiet pings after the refusal).
    const after = stub.requests.length;
    await stub.waitForRequests(after + 3, 10_000);
    expect(stub.requests.slice(after).every((r) => r.status === 200 && !body(r).workers.some((w) => w.worker === 'big'))).toBe(true);
    const line = d.logs.find((l) => String(l.msg).startsWith('platform refused a ping entry on its own'));
    expect(line).toMatchObject({ level: 'error', worker: 'big', instance: 'i1', state: 'active' });
  });

  it('drops a stopped entry the platform refuses on its own, so it is owed no more', async () => {
    const { d, stub } = await setup((req) =>
      body(req).workers.some((w) => w.worker === 'big' && w.state === 'stopped') ? { status: 413, body: 'no' } : { status: 200, body: {} },
    );
    await stub.waitForRequests(1);
    await beatAll(d, ['a']);
    await beatAll(d, ['big'], { blob: 'x'.repeat(1900) });
    await waitFor(async () => (await d.daemon.snapshot()).workers.active === 2);
    const reply = await nc.request(`${d.prefix}.leave.big`, JSON.stringify({ v: 1, worker: 'big', instance: 'i1', seq: 2, phase: 'stopped' }), { timeout: 3000 });
    expect(reply.json()).toMatchObject({ ok: true });
    // A stopped worker leaves the list once it is owed no more.
    await waitFor(() => !d.daemon.workers().some((w) => w.state === 'stopped'), { timeoutMs: 10_000 });
    const metrics = await (await fetch(`${d.base}/metrics`)).text();
    expect(metrics).toMatch(/hbagg_ping_entries_rejected_total\{state="stopped"\} 1/);
    expect(stub.accepted().at(-1)!.body).toMatchObject({ workers: [{ worker: 'a' }] });
  });
});
