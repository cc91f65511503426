/**
 * A redirect from platform.url is never an acceptance. fetch
 * would follow a 301/302/303 as a bodiless GET (a 200 there looked like
 * delivery), chase a 307 loop with ~21 full POSTs, and carry worker meta to
 * another origin.
 */
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
  type TestDaemon,
} from '../../testing/index.js';

describe('platform redirects', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  const open: { d?: TestDaemon; stubs: PlatformStub[] }[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await natsClient(nats.url);
  });
  afterEach(async () => {
    for (const o of open.splice(0)) {
      await o.d?.stop();
      for (const s of o.stubs) await s.close();
    }
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  /** A worker beats, then leaves: its `stopped` entry is owed to the platform until a ping is accepted. */
  async function leaveOne(d: TestDaemon, worker: string): Promise<void> {
    nc.publish(`${d.prefix}.beat.${worker}`, JSON.stringify({ v: 1, worker, instance: 'i1', seq: 1, interval_ms: 1000 }));
    await nc.flush();
    await waitFor(async () => (await d.daemon.snapshot()).workers.active === 1);
    const reply = await nc.request(
      `${d.prefix}.leave.${worker}`,
      JSON.stringify({ v: 1, worker, instance: 'i1', seq: 2, phase: 'stopped', reason: 'test' }),
      { timeout: 3000 },
    );
    expect(reply.json()).toMatchObject({ ok: true, state: 'stopped' });
  }

  for (const status of [301, 302, 303]) {
    it(`treats a ${status} to a target that answers 200 as a failure, so the stopped worker stays owed`, async () => {
      const target = await startPlatformStub();
      const stub = await startPlatformStub();
      stub.respondWith({ status, headers: { location: `${target.url}?api_key=s3cret` } });
      const d = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, env: { HBAGG_LOG_LEVEL: 'trace' } });
      open.push({ d, stubs: [stub, target] });
      await leaveOne(d, 'w1');
      await stub.waitForRequests(2);
      expect(target.requests).toEqual([]);
      expect((await d.daemon.snapshot()).pings.accepted).toBeUndefined();
      // A stopped worker is listed until the platform accepts it: still owed.
      expect(d.daemon.workers().map((w) => [w.worker, w.state])).toEqual([['w1', 'stopped']]);
      const health = await fetch(`${d.base}/healthz`);
      expect(health.status).toBe(503);
      const lines = d.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('platform redirected to'));
      expect(lines.map((l) => l.msg)).toEqual([`platform redirected to ${target.url}?[redacted]; set platform.url to it`]);
      expect(JSON.stringify(d.logs)).not.toContain('s3cret');
    });
  }

  it('sends one POST per ping to a platform that redirects with 307 to itself', async () => {
    const stub = await startPlatformStub();
    stub.respondWith({ status: 307, headers: { location: stub.url } });
    const d = await startTestDaemon({
      natsUrl: nats.url,
      platformUrl: stub.url,
      env: { HBAGG_MIN_INTERVAL_MS: '100', HBAGG_MAX_INTERVAL_MS: '200' },
    });
    open.push({ d, stubs: [stub] });
    await stub.waitForRequests(3);
    await d.stop();
    const ids = stub.requests.map((r) => (r.body as Ping).batch.id);
    // Following the redirect would repeat one body (one batch id) up to 20 times.
    expect(new Set(ids).size).toBe(ids.length);
    expect(stub.requests.every((r) => r.method === 'POST')).toBe(true);
    expect((await d.daemon.snapshot()).pings.accepted).toBeUndefined();
  });

  it('never sends a ping to another origin named by a 307', async () => {
    const other = await startPlatformStub();
    const stub = await startPlatformStub();
    stub.respondWith({ status: 307, headers: { location: other.url } });
    const d = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url });
    open.push({ d, stubs: [stub, other] });
    nc.publish(`${d.prefix}.beat.w1`, JSON.stringify({ v: 1, worker: 'w1', instance: 'i1', seq: 1, interval_ms: 1000, meta: { secret: 'x' } }));
    await nc.flush();
    await stub.waitForRequests(2);
    expect(other.requests).toEqual([]);
    const line = d.logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('platform redirected to'));
    expect(line?.msg).toBe(`platform redirected to ${other.url}; set platform.url to it`);
  });
});
