/**
 * GET /v1/workers claimed "all states" but a delivered
 * `stopped` worker is gone from it. README now says exactly what it lists;
 * this keeps the two in step.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

describe('GET /v1/workers', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let stub: PlatformStub;
  let d: TestDaemon;

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await natsClient(nats.url);
    stub = await startPlatformStub();
    d = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, env: { HBAGG_LOST_AFTER_MIN_MS: '300' } });
  });
  afterAll(async () => {
    await d?.stop();
    await stub?.close();
    await nc?.close();
    await nats?.stop();
  });

  const listed = async () =>
    ((await (await fetch(`${d.base}/v1/workers`)).json()) as { workers: { worker: string; state: string }[] }).workers
      .map((w) => `${w.worker}:${w.state}`)
      .sort();

  it('lists a stopped worker until the platform accepts it, and an accepted lost one until its retention passes', async () => {
    let holding = true;
    stub.respondWith(() => (holding ? { status: 503, headers: { 'retry-after': '1' } } : { status: 200, body: {} }));
    for (const w of ['stays', 'leaves', 'dies']) {
      nc.publish(`${d.prefix}.beat.${w}`, JSON.stringify({ v: 1, worker: w, instance: 'i1', seq: 1, interval_ms: 100 }));
    }
    const keep = setInterval(() => nc.publish(`${d.prefix}.beat.stays`, JSON.stringify({ v: 1, worker: 'stays', instance: 'i1', seq: Date.now(), interval_ms: 100 })), 50);
    try {
      await nc.request(`${d.prefix}.leave.leaves`, JSON.stringify({ v: 1, worker: 'leaves', instance: 'i1', seq: 2, phase: 'stopped' }), { timeout: 3000 });
      await waitFor(async () => (await listed()).includes('dies:lost'), { timeoutMs: 5000 });
      expect(await listed()).toEqual(['dies:lost', 'leaves:stopped', 'stays:active']);
      holding = false;
      await waitFor(async () => (await listed()).join() === 'dies:lost,stays:active', { timeoutMs: 10_000 });
    } finally {
      clearInterval(keep);
    }
  });
});
