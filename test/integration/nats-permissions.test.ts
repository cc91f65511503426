/**
 * The trust model's NATS half (README "Trust model"): with the shipped
 * deploy/nats-per-worker-users.conf, a worker can beat and leave as itself
 * only. NATS does not tell hbagg who published, so this is the one place a
 * forged beat can be stopped: at the server, before the daemon sees it.
 */
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LeaveReply } from '../../src/protocol/schemas.js';
import {
  startNatsServer,
  startPlatformStub,
  startTestDaemon,
  waitFor,
  type NatsServerHandle,
  type PlatformStub,
  type TestDaemon,
} from '../../testing/index.js';

const CONF = path.resolve(import.meta.dirname, '../../deploy/nats-per-worker-users.conf');
const PASS = { HBAGG_NATS_PASS: 'daemon-secret', WORKER_1_PASS: 'one-secret', WORKER_2_PASS: 'two-secret' };

const beat = (worker: string, instance: string, seq: number) => JSON.stringify({ v: 1, worker, instance, seq, interval_ms: 1000 });
const leave = (worker: string, instance: string) =>
  JSON.stringify({ v: 1, worker, instance, seq: 9, phase: 'stopped', reason: 'test' });

async function asWorker(url: string, id: 'worker-1' | 'worker-2', pass: string): Promise<{ nc: NatsConnection; errors: string[] }> {
  const nc = await connect({ servers: url, user: id, pass, inboxPrefix: `_INBOX_${id}` });
  const errors: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'error') errors.push(String(s.error));
  })();
  return { nc, errors };
}

describe('one NATS user per worker (deploy/nats-per-worker-users.conf)', () => {
  let nats: NatsServerHandle;
  let stub: PlatformStub;
  let d: TestDaemon;
  const saved = { ...process.env };

  beforeAll(async () => {
    // nats-server reads the passwords ($VAR) from its environment.
    Object.assign(process.env, PASS);
    nats = await startNatsServer({ args: ['-c', CONF] });
    stub = await startPlatformStub();
    d = await startTestDaemon({
      natsUrl: nats.url,
      platformUrl: stub.url,
      env: { HBAGG_NATS_USER: 'hbagg', HBAGG_NATS_PASS: PASS.HBAGG_NATS_PASS, HBAGG_SUBJECT_PREFIX: 'hb' },
    });
  });
  afterAll(async () => {
    await d?.stop();
    await stub?.close();
    await nats?.stop();
    process.env = saved;
  });

  const known = (worker: string) => d.daemon.workers().find((w) => w.worker === worker);

  it('lets a worker beat and leave as itself but never on another worker\'s subject', async () => {
    const one = await asWorker(nats.url, 'worker-1', PASS.WORKER_1_PASS);
    const two = await asWorker(nats.url, 'worker-2', PASS.WORKER_2_PASS);
    try {
      two.nc.publish('hb.beat.worker-2', beat('worker-2', 'real', 1));
      await waitFor(() => known('worker-2')?.instance === 'real', { message: 'worker-2 beating' });

      // worker-1 forges a beat of worker-2 with a new instance (it would report the real one `restarted`), then beats as itself.
      one.nc.publish('hb.beat.worker-2', beat('worker-2', 'forged', 1));
      one.nc.publish('hb.beat.worker-1', beat('worker-1', 'a', 1));
      await one.nc.flush();
      // One connection's messages arrive in order: once worker-1's own beat is in, the forged one would have been too.
      await waitFor(() => known('worker-1'), { message: 'worker-1 beating' });
      expect(known('worker-2')).toMatchObject({ instance: 'real', state: 'active' });
      await waitFor(() => one.errors.some((e) => /permissions violation/i.test(e)), { message: 'the server told worker-1 it may not publish there' });

      // A forged Leave for worker-2 gets no acknowledgement and changes nothing.
      const forged = await one.nc.request('hb.leave.worker-2', leave('worker-2', 'real'), { timeout: 1_000 }).then(
        (m) => m.json<LeaveReply>(),
        (err: unknown) => err,
      );
      expect(forged).toBeInstanceOf(Error);
      expect(known('worker-2')).toMatchObject({ instance: 'real', state: 'active' });

      // Its own Leave works, reply included (through its own inbox prefix).
      const own = (await one.nc.request('hb.leave.worker-1', leave('worker-1', 'a'), { timeout: 5_000 })).json<LeaveReply>();
      expect(own).toMatchObject({ ok: true, worker: 'worker-1', state: 'stopped' });
      // The platform hears it (once accepted, the daemon forgets a stopped instance: asking the daemon would race the ping).
      const stoppedSeen = () =>
        stub.accepted().some((r) => ((r.body as { workers?: { worker: string; state: string }[] }).workers ?? []).some((w) => w.worker === 'worker-1' && w.state === 'stopped'));
      await waitFor(stoppedSeen, { message: 'worker-1 stopped reaches the platform' });
    } finally {
      await one.nc.close();
      await two.nc.close();
    }
  }, 60_000);

  it('refuses the daemon\'s user anything but hearing workers and answering them', async () => {
    const nc = await connect({ servers: nats.url, user: 'hbagg', pass: PASS.HBAGG_NATS_PASS });
    const errors: string[] = [];
    void (async () => {
      for await (const s of nc.status()) if (s.type === 'error') errors.push(String(s.error));
    })();
    try {
      nc.publish('hb.beat.worker-2', beat('worker-2', 'from-daemon-user', 1));
      await nc.flush();
      await waitFor(() => errors.some((e) => /permissions violation/i.test(e)), { message: 'publish refused' });
      expect(known('worker-2')?.instance).not.toBe('from-daemon-user');
    } finally {
      await nc.close();
    }
  });
});
