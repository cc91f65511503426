/**
 * A hung disk: fsfreeze or a dead network file system
 * makes fdatasync block for good. A Leave must still be answered, `ok: false`
 * within its deadline, counted, and a Leave repeated once the disk is back
 * must be acknowledged. The real journal runs; only its FileHandle's
 * datasync is held (fsfreeze itself needs root on a real block device).
 */
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { LEAVE_PERSIST_TIMEOUT_MS } from '../../src/daemon/intake.js';
import type { LeaveReply } from '../../src/protocol/schemas.js';
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

const leave = (worker: string, phase: 'draining' | 'stopped') =>
  JSON.stringify({ v: 1, worker, instance: `${worker}-i1`, seq: 5, phase, reason: 'test' });

/** Holds every FileHandle.datasync in this process until `release()`; then lets them (and later ones) through. */
async function hangDatasync(): Promise<{ calls(): number; release(): void }> {
  const probe = await open(path.join(tmpdir(), `hbagg-proto-${process.pid}`), 'w');
  const proto = Object.getPrototypeOf(probe) as { datasync(this: unknown): Promise<void> };
  await probe.close();
  const real = proto.datasync;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let calls = 0;
  vi.spyOn(proto, 'datasync').mockImplementation(async function (this: unknown) {
    calls++;
    await gate;
    return real.call(this);
  });
  return { calls: () => calls, release };
}

describe('a Leave while the disk hangs', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let stub: PlatformStub;

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await natsClient(nats.url);
    stub = await startPlatformStub();
    stub.respondWith({ status: 503 });
  });
  afterEach(() => vi.restoreAllMocks());
  afterAll(async () => {
    await nc?.close();
    await stub?.close();
    await nats?.stop();
  });

  it('is answered ok:false within its deadline and counted, and acknowledged when repeated once the disk is back', async () => {
    const d = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url });
    try {
      nc.publish(`${d.prefix}.beat.w1`, beat('w1', 1));
      await waitFor(() => d.daemon.workers().some((w) => w.worker === 'w1'), { message: 'w1 known' });
      const disk = await hangDatasync();

      const started = Date.now();
      const first = (await nc.request(`${d.prefix}.leave.w1`, leave('w1', 'stopped'), { timeout: 15_000 })).json<LeaveReply>();
      expect(first.ok).toBe(false);
      expect(first.ok === false && first.error).toMatch(new RegExp(`did not confirm the write within ${LEAVE_PERSIST_TIMEOUT_MS} ms.*send it again`));
      expect(Date.now() - started).toBeGreaterThanOrEqual(LEAVE_PERSIST_TIMEOUT_MS - 50);
      expect(disk.calls()).toBeGreaterThan(0);
      // Over HTTP the same, as a 503: the daemon's disk failed, not the request.
      const overHttp = await fetch(`${d.base}/v1/leave`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: leave('w1', 'stopped'),
      });
      expect(overHttp.status).toBe(503);
      expect(await overHttp.json()).toMatchObject({ ok: false, error: expect.stringContaining('send it again') });
      const metrics = await (await fetch(`${d.base}/metrics`)).text();
      expect(metrics).toMatch(/hbagg_leaves_total\{phase="stopped",result="journal_timeout"\} 2/);

      disk.release();
      const again = (await nc.request(`${d.prefix}.leave.w1`, leave('w1', 'stopped'), { timeout: 15_000 })).json<LeaveReply>();
      expect(again).toMatchObject({ ok: true, worker: 'w1', state: 'stopped' });
    } finally {
      vi.restoreAllMocks();
      await d.stop();
    }
  }, 60_000);
});
