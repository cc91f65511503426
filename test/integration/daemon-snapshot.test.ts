import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { createLogger } from '../../src/daemon/logger.js';
import {
  beat,
  natsClient,
  startNatsServer,
  startPlatformStub,
  startTestDaemon,
  waitFor,
  type NatsServerHandle,
  type PlatformStub,
} from '../../testing/index.js';

describe("the daemon's seam: snapshot(), workers() and the lifecycle it owns", () => {
  let nats: NatsServerHandle;
  let stub: PlatformStub;
  let nc: NatsConnection;

  beforeAll(async () => {
    nats = await startNatsServer();
    stub = await startPlatformStub();
    nc = await natsClient(nats.url);
  });

  afterAll(async () => {
    await nc?.close();
    await stub?.close();
    await nats?.stop();
  });

  it('shows a daemon that was never started as created, listening nowhere, with nothing counted', async () => {
    const cfg = loadConfig({
      env: {
        HBAGG_PLATFORM_URL: stub.url,
        HBAGG_NATS_URL: nats.url,
        HBAGG_HTTP_LISTEN: '127.0.0.1:0',
        HBAGG_STATE_DIR: mkdtempSync(path.join(tmpdir(), 'hbagg-seam-')),
      },
    });
    const d = new Daemon(cfg, createLogger('silent'));
    const s = await d.snapshot();
    expect(s).toMatchObject({
      state: 'created',
      http: undefined,
      nats: { ready: false, tls: false },
      workers: { active: 0, draining: 0, stopped: 0, lost: 0 },
      tracked: 0,
      beatsAccepted: 0,
      stalls: 0,
      lossWatch: false,
    });
    expect(Object.values(s.beatsRejected).every((n) => n === 0)).toBe(true);
    expect(d.workers()).toEqual([]);
  });

  it('counts what a running daemon took in, as /metrics and /v1/workers do, until it stops', async () => {
    const t = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url });
    try {
      nc.publish(`${t.prefix}.beat.seam-1`, beat('seam-1', 1));
      nc.publish(`${t.prefix}.beat.seam-1`, '{not json');
      await nc.flush();
      await waitFor(async () => (await t.daemon.snapshot()).beatsRejected.invalid_json === 1, { message: 'the bad beat counted' });
      const s = await t.daemon.snapshot();
      expect(s).toMatchObject({ state: 'running', nats: { ready: true, state: 'ready' }, beatsAccepted: 1, tracked: 1 });
      expect(s.workers.active).toBe(1);
      expect(s.http?.port).toBe(Number(new URL(t.base).port));
      expect(t.daemon.workers()).toEqual([expect.objectContaining({ worker: 'seam-1', state: 'active', seq: 1 })]);
      const listed = (await (await fetch(`${t.base}/v1/workers`)).json()) as { workers: unknown[] };
      expect(listed.workers).toEqual(JSON.parse(JSON.stringify(t.daemon.workers())));
      // The event-loop monitor runs from start(): /livez has samples to judge by.
      await waitFor(async () => {
        const live = (await (await fetch(`${t.base}/livez`)).json()) as { event_loop: { samples: number } };
        return live.event_loop.samples > 0;
      }, { message: 'event-loop samples' });
    } finally {
      await t.stop();
    }
    const after = await t.daemon.snapshot();
    expect(after.state).toBe('stopped');
    expect(after.http).toBeUndefined();
    expect(after.beatsAccepted).toBe(1);
  });

  it('wakes for nothing while no worker is live: the loss ticker runs only from a first beat until the last live worker is gone', async () => {
    const t = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, env: { HBAGG_LOST_AFTER_MIN_MS: '1000' } });
    try {
      expect((await t.daemon.snapshot()).lossWatch).toBe(false);
      nc.publish(`${t.prefix}.beat.idle-1`, beat('idle-1', 1, { interval_ms: 300 }));
      await nc.flush();
      await waitFor(async () => (await t.daemon.snapshot()).lossWatch, { message: 'ticker started by the first beat' });
      // Silent now: reported lost, after which nothing is left to convict and the ticker stops.
      await waitFor(async () => {
        const s = await t.daemon.snapshot();
        return s.workers.lost === 1 && !s.lossWatch;
      }, { timeoutMs: 8_000, message: 'worker lost, ticker stopped' });
      // A return (a beat of the lost instance) starts it again, and its loss is detected again.
      nc.publish(`${t.prefix}.beat.idle-1`, beat('idle-1', 2, { interval_ms: 300 }));
      await nc.flush();
      await waitFor(async () => (await t.daemon.snapshot()).workers.active === 1, { message: 'returned' });
      await waitFor(async () => {
        const s = await t.daemon.snapshot();
        return s.workers.lost === 1 && !s.lossWatch;
      }, { timeoutMs: 8_000, message: 'lost again, ticker stopped again' });
    } finally {
      await t.stop();
    }
  });
});
