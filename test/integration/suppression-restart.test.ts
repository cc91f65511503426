/**
 * Suppression survives kill -9 (docs/PROTOCOL.md 2.3): a real `hbagg run` process
 * acknowledges a `draining` Leave and a `stopped` one the platform then
 * accepts (so no terminal entry is owed any more), and is killed. A new
 * daemon on the same state dir drops the late beats of both instances as
 * `suppressed`, never lists them in a ping, and takes a new instance of the
 * same worker.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOURNAL_FILE } from '../../src/daemon/journal/journal.js';
import { replay } from '../../src/daemon/journal/journal-record.js';
import type { LeaveReply, Ping } from '../../src/protocol/schemas.js';
import {
  natsClient,
  spawnHbagg,
  startNatsServer,
  startPlatformStub,
  startTestDaemon,
  uniquePrefix,
  waitFor,
  type NatsServerHandle,
  type PlatformStub,
} from '../../testing/index.js';

const runCli = (env: Record<string, string>) => spawnHbagg(['run'], env);

const beat = (worker: string, instance: string, seq: number) => ({ v: 1, worker, instance, seq, interval_ms: 100 });

describe('suppression across kill -9', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let stub: PlatformStub;

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await natsClient(nats.url);
    stub = await startPlatformStub();
  });

  afterAll(async () => {
    await nc?.close();
    await stub?.close();
    await nats?.stop();
  });

  it('drops the late beats of instances that announced draining or stopped before the crash, and takes a new instance', async () => {
    const prefix = uniquePrefix();
    const stateDir = mkdtempSync(path.join(tmpdir(), 'hbagg-suppress-'));
    const env = {
      HBAGG_NODE_ID: 'suppress-node',
      HBAGG_NATS_URL: nats.url,
      HBAGG_PLATFORM_URL: stub.url,
      HBAGG_HTTP_LISTEN: '127.0.0.1:0',
      HBAGG_STATE_DIR: stateDir,
      HBAGG_SUBJECT_PREFIX: prefix,
      HBAGG_MIN_INTERVAL_MS: '100',
      HBAGG_MAX_INTERVAL_MS: '400',
      HBAGG_LOG_LEVEL: 'info',
    };
    stub.respondWith({ status: 200, body: {} });
    const first = runCli(env);
    try {
      await waitFor(() => first.out().includes('"msg":"nats ready"'), { timeoutMs: 20_000, message: 'first daemon ready' });
      for (const [w, i] of [['drainer', 'd1'], ['stopper', 's1']] as const) nc.publish(`${prefix}.beat.${w}`, JSON.stringify(beat(w, i, 1)));
      await nc.flush();
      const leave = async (worker: string, instance: string, phase: 'draining' | 'stopped') =>
        (
          await nc.request(`${prefix}.leave.${worker}`, JSON.stringify({ v: 1, worker, instance, seq: 2, phase, drain_timeout_ms: 60_000 }), {
            timeout: 5000,
          })
        ).json<LeaveReply>();
      expect(await leave('drainer', 'd1', 'draining')).toEqual({ ok: true, worker: 'drainer', instance: 'd1', state: 'draining' });
      expect(await leave('stopper', 's1', 'stopped')).toEqual({ ok: true, worker: 'stopper', instance: 's1', state: 'stopped' });

      // The platform accepts the stopped entry, and the journal forgets it: only the retirements hold s1 now.
      await waitFor(
        () => stub.accepted().some((r) => (r.body as Ping).workers.some((w) => w.instance === 's1' && w.state === 'stopped')),
        { message: 'stopped accepted' },
      );
      const journal = () => replay(readFileSync(path.join(stateDir, JOURNAL_FILE)));
      await waitFor(() => journal().entries.length === 0, { message: 'the accepted stopped acknowledged in the journal' });
      expect(journal().retired.map((r) => `${r.worker}/${r.instance}:${r.as}`).sort()).toEqual(['drainer/d1:draining', 'stopper/s1:stopped']);

      first.proc.kill('SIGKILL');
      await first.exited;
      expect(first.proc.signalCode).toBe('SIGKILL');

      stub.clear();
      const d2 = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, env: { ...env, HBAGG_LOG_LEVEL: 'info' } });
      try {
        expect(d2.logs.find((l) => l.msg === 'restored retired instances (still suppressed)')?.instances).toBe(2);

        // Late beats over HTTP say why they are dropped...
        const res = await fetch(`${d2.base}/v1/beat`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify([beat('drainer', 'd1', 3), beat('stopper', 's1', 3)]),
        });
        expect(res.status).toBe(202);
        expect(await res.json()).toEqual({
          accepted: 0,
          rejected: [
            { index: 0, reason: 'suppressed', error: 'instance d1 of drainer has announced draining' },
            { index: 1, reason: 'suppressed', error: 'instance s1 of stopper has announced stopped' },
          ],
        });
        // ...and over NATS they are dropped the same way.
        const suppressed = async () =>
          (await d2.daemon.snapshot()).beatsRejected.suppressed;
        for (const [w, i] of [['drainer', 'd1'], ['stopper', 's1']] as const) nc.publish(`${prefix}.beat.${w}`, JSON.stringify(beat(w, i, 4)));
        // A new instance of the drainer is a restart: accepted.
        nc.publish(`${prefix}.beat.drainer`, JSON.stringify(beat('drainer', 'd2', 1)));
        await nc.flush();
        await waitFor(async () => (await suppressed()) === 4, { message: 'late NATS beats suppressed' });
        const listed = () => stub.accepted().flatMap((r) => (r.body as Ping).workers);
        await waitFor(() => listed().some((w) => w.instance === 'd2' && w.state === 'active'), { message: 'new instance pinged' });
        // One more ping after the late beats were all handled: still neither of the retired instances.
        const pings = stub.requests.length;
        await waitFor(() => stub.requests.length > pings, { message: 'another ping' });
        const retiredListed = stub.requests.flatMap((r) => (r.body as Ping).workers).filter((w) => w.instance === 'd1' || w.instance === 's1');
        expect(retiredListed).toEqual([]);
        expect((await d2.daemon.snapshot()).workers).toEqual({ active: 1, draining: 0, stopped: 0, lost: 0 });
      } finally {
        await d2.stop();
      }
    } finally {
      first.proc.kill('SIGKILL');
    }
  }, 60_000);
});
