/**
 * The NATS server crashes and comes back, three times: the daemon and the
 * worker clients reconnect on their own, /readyz follows (503 while down, 200
 * after), beats resume, nobody is falsely reported lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeartbeatClient } from '../../src/client/index.js';
import type { Ping } from '../../src/protocol/schemas.js';
import {
  sleep,
  startNatsServer,
  startPlatformStub,
  startTestDaemon,
  waitFor,
  type NatsServerHandle,
  type PlatformStub,
  type TestDaemon,
} from '../../testing/index.js';

describe('a nats-server restart', () => {
  let nats: NatsServerHandle;
  let stub: PlatformStub;
  let d: TestDaemon;

  beforeAll(async () => {
    nats = await startNatsServer();
    stub = await startPlatformStub();
    d = await startTestDaemon({
      natsUrl: nats.url,
      platformUrl: stub.url,
      env: { HBAGG_MIN_INTERVAL_MS: '100', HBAGG_MAX_INTERVAL_MS: '1000', HBAGG_LOST_AFTER_MIN_MS: '3000', HBAGG_LOG_LEVEL: 'info' },
    });
  });

  afterAll(async () => {
    await d?.stop();
    await stub?.close();
    await nats?.stop();
  });

  const readyz = async () => (await fetch(`${d.base}/readyz`)).status;

  it('is followed by reconnects of the daemon and the workers, /readyz, and resumed beats, three times over', async () => {
    const clients = Array.from(
      { length: 20 },
      (_, i) =>
        new HeartbeatClient({
          worker: `rc-${i}`,
          servers: nats.url,
          subjectPrefix: d.prefix,
          intervalMs: 200,
          connectOptions: { reconnectTimeWait: 100 },
        }),
    );
    await Promise.all(clients.map((c) => c.start()));
    const seqOf = (w: string) => d.daemon.workers().find((e) => e.worker === w)?.seq ?? -1;
    const allBeyond = (marks: Map<string, number>) => clients.every((c) => seqOf(c.worker) > marks.get(c.worker)!);
    await waitFor(() => clients.every((c) => seqOf(c.worker) >= 2), { message: 'all clients beating' });
    expect(await readyz()).toBe(200);

    const outages: { downMs: number; readyAfterMs: number; beatsAfterMs: number }[] = [];
    for (let round = 0; round < 3; round++) {
      await nats.kill();
      const killed = Date.now();
      await waitFor(async () => (await readyz()) === 503, { timeoutMs: 5000, message: '/readyz 503 while nats is down' });
      expect((await d.daemon.snapshot()).nats.state).toBe('disconnected');
      await sleep(500);
      await nats.restart();
      const restarted = Date.now();
      await waitFor(async () => (await readyz()) === 200, { timeoutMs: 10_000, message: '/readyz 200 after the restart' });
      const ready = Date.now();
      const marks = new Map(clients.map((c) => [c.worker, seqOf(c.worker)] as const));
      await waitFor(() => allBeyond(marks), { timeoutMs: 10_000, message: 'every worker beating again' });
      outages.push({ downMs: restarted - killed, readyAfterMs: ready - restarted, beatsAfterMs: Date.now() - restarted });
    }
    expect(clients.every((c) => c.state === 'beating')).toBe(true);

    // A Leave after the restarts works end to end.
    const left = await clients[0]!.leave('stopped', { reason: 'after restarts' });
    expect(left.ok).toBe(true);

    await Promise.all(clients.map((c) => c.close()));
    const sent = new Map(clients.map((c) => [c.worker, c.seq] as const));
    await sleep(300);
    await d.stop();
    const pings = stub.accepted().map((r) => r.body as Ping);
    const falseLost = pings.flatMap((p) => p.workers).filter((w) => w.state === 'lost');
    expect(falseLost).toEqual([]);
    const counted = new Map<string, number>();
    for (const p of pings) for (const w of p.workers) counted.set(w.worker, (counted.get(w.worker) ?? 0) + w.beats);
    const totalSent = [...sent.values()].reduce((a, b) => a + b, 0) - 1; // rc-0's last seq went to its Leave
    const totalCounted = [...counted.values()].reduce((a, b) => a + b, 0);
    const acceptedByDaemon = (await d.daemon.snapshot()).beatsAccepted;
    console.info(
      `nats kill/restart x3: ${outages.map((o) => `down ${o.downMs} ms, ready ${o.readyAfterMs} ms and beats ${o.beatsAfterMs} ms after the restart`).join('; ')}; ` +
        `beats sent ${totalSent}, accepted by the daemon ${acceptedByDaemon}, counted in accepted pings ${totalCounted}; ` +
        `never delivered by NATS ${totalSent - acceptedByDaemon} (sent while down or before the daemon resubscribed: core NATS is at-most-once); false lost: ${falseLost.length}`,
    );
    // Nothing the daemon accepted is lost: every accepted beat is counted once in an accepted ping.
    expect(totalCounted).toBe(acceptedByDaemon);
    expect(acceptedByDaemon).toBeLessThanOrEqual(totalSent);
  }, 90_000);
});

describe('a NATS outage longer than the loss threshold', () => {
  it('convicts nobody for the time the daemon could not hear, and still reports a worker that died meanwhile', async () => {
    const nats = await startNatsServer();
    const stub = await startPlatformStub();
    const d = await startTestDaemon({
      natsUrl: nats.url,
      platformUrl: stub.url,
      env: { HBAGG_MIN_INTERVAL_MS: '100', HBAGG_MAX_INTERVAL_MS: '500', HBAGG_LOST_AFTER_MIN_MS: '1000' },
    });
    const clients = ['alive-1', 'alive-2', 'dies'].map(
      (worker) =>
        new HeartbeatClient({ worker, servers: nats.url, subjectPrefix: d.prefix, intervalMs: 200, connectOptions: { reconnectTimeWait: 100 } }),
    );
    try {
      await Promise.all(clients.map((c) => c.start()));
      const seqOf = (w: string) => d.daemon.workers().find((e) => e.worker === w)?.seq ?? -1;
      await waitFor(() => clients.every((c) => seqOf(c.worker) >= 2), { message: 'all clients beating' });

      await nats.kill();
      await waitFor(async () => (await d.daemon.snapshot()).nats.state === 'disconnected', { message: 'daemon saw the outage' });
      await clients[2]!.close(); // dies while nobody can hear it: no Leave
      await sleep(3000); // three times lost_after_min_ms
      expect(d.daemon.workers().filter((e) => e.state === 'lost')).toEqual([]);
      await nats.restart();
      await waitFor(async () => (await d.daemon.snapshot()).nats.ready, { timeoutMs: 10_000, message: 'daemon back' });

      // The dead one is reported once the daemon has listened for the threshold again; the others never.
      const lost = await waitFor(
        () => stub.accepted().flatMap((r) => (r.body as Ping).workers).find((w) => w.worker === 'dies' && w.state === 'lost'),
        { timeoutMs: 5000, message: 'the dead worker reported lost' },
      );
      expect(lost.reason).toBe('heartbeat_timeout');
      await sleep(1500);
      const wronglyLost = stub.accepted().flatMap((r) => (r.body as Ping).workers).filter((w) => w.worker !== 'dies' && w.state === 'lost');
      expect(wronglyLost).toEqual([]);
      expect(d.logs.some((l) => l.msg === 'nats back; the time it was away does not count toward loss')).toBe(true);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await d.stop();
      await stub.close();
      await nats.stop();
    }
  }, 60_000);
});
