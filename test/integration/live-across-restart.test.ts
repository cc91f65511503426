/**
 * Instances alive across a daemon crash (docs/PROTOCOL.md 2.7): a real `hbagg run`
 * process journals each active instance (with its beats_total) and is killed
 * with kill -9. A new daemon on the same state dir lists both instances in
 * its first ping, reports `lost` (heartbeat_timeout) the one that died while
 * no daemon was running, and goes on counting beats_total of the one that
 * beats again, never reporting it lost.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOURNAL_FILE } from '../../src/daemon/journal/journal.js';
import { replay } from '../../src/daemon/journal/journal-record.js';
import type { Ping, PingWorker } from '../../src/protocol/schemas.js';
import {
  natsClient,
  sleep,
  spawnHbagg,
  startNatsServer,
  startPlatformStub,
  startTestDaemon,
  uniquePrefix,
  waitFor,
  type NatsServerHandle,
  type PlatformStub,
} from '../../testing/index.js';

const beat = (worker: string, seq: number) => JSON.stringify({ v: 1, worker, instance: `${worker}-i1`, seq, interval_ms: 100 });

describe('instances alive across kill -9 (2.7)', () => {
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

  it('reports lost an instance that died while the daemon was down, and goes on counting one that beats again', async () => {
    const prefix = uniquePrefix();
    const stateDir = mkdtempSync(path.join(tmpdir(), 'hbagg-alive-'));
    const env = {
      HBAGG_NODE_ID: 'alive-node',
      HBAGG_NATS_URL: nats.url,
      HBAGG_PLATFORM_URL: stub.url,
      HBAGG_HTTP_LISTEN: '127.0.0.1:0',
      HBAGG_STATE_DIR: stateDir,
      HBAGG_SUBJECT_PREFIX: prefix,
      HBAGG_MIN_INTERVAL_MS: '100',
      HBAGG_MAX_INTERVAL_MS: '400',
      HBAGG_LOST_AFTER_MIN_MS: '1000',
      HBAGG_LOG_LEVEL: 'info',
    };
    stub.respondWith({ status: 200, body: {} });
    const first = spawnHbagg(['run'], env);
    try {
      await waitFor(() => first.out().includes('"msg":"nats ready"'), { timeoutMs: 20_000, message: 'first daemon ready' });
      for (let seq = 1; seq <= 3; seq++) {
        for (const w of ['dies', 'lives']) nc.publish(`${prefix}.beat.${w}`, beat(w, seq));
        await nc.flush();
      }
      const entries = (pings: readonly { body: unknown }[]) => pings.flatMap((r) => (r.body as Ping).workers ?? []);
      await waitFor(
        () => ['dies', 'lives'].every((w) => entries(stub.accepted()).some((e) => e.worker === w && e.beats_total === 3)),
        { timeoutMs: 10_000, message: 'both instances accepted with beats_total 3' },
      );
      // Journaled before the ping that carried them: alive, with their count.
      const journaled = replay(readFileSync(path.join(stateDir, JOURNAL_FILE))).entries;
      expect(journaled.map((e) => [e.worker, e.state, e.beats_total]).sort()).toEqual([
        ['dies', 'active', 3],
        ['lives', 'active', 3],
      ]);

      first.proc.kill('SIGKILL');
      await first.exited;
      expect(first.proc.signalCode).toBe('SIGKILL');

      // No daemon for a while; then a new one on the same state dir. Only `lives` beats again.
      await sleep(300);
      stub.clear();
      const d2 = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, env });
      let seq = 3;
      const beating = setInterval(() => nc.publish(`${prefix}.beat.lives`, beat('lives', ++seq)), 100);
      try {
        expect(d2.logs.find((l) => l.msg === 'restored live instances (lost unless they beat again)')?.instances).toBe(2);
        const fromD2 = () => entries(stub.accepted());
        await waitFor(() => fromD2().some((e) => e.worker === 'dies' && e.state === 'lost'), {
          timeoutMs: 10_000,
          message: 'the instance that died while the daemon was down reported lost',
        });
        const first2 = stub.accepted()[0]!.body as Ping;
        expect(first2.workers.map((e) => `${e.worker}:${e.state}`).sort()).toEqual(['dies:active', 'lives:active']);
        expect(fromD2().find((e) => e.worker === 'dies' && e.state === 'lost')).toMatchObject({
          instance: 'dies-i1', reason: 'heartbeat_timeout', beats_total: 3,
        });
        clearInterval(beating);
        await nc.flush();
        const last = seq;
        await waitFor(() => fromD2().some((e) => e.worker === 'lives' && e.beats_total === last), {
          message: `lives counted on to ${last}`,
        });
        const lives: PingWorker[] = fromD2().filter((e) => e.worker === 'lives');
        expect(lives.every((e) => e.state === 'active')).toBe(true);
        // Counted on from the journaled 3, never back.
        const totals = lives.map((e) => e.beats_total ?? -1);
        expect(totals.every((n, i) => n >= 3 && (i === 0 || n >= totals[i - 1]!))).toBe(true);
      } finally {
        clearInterval(beating);
        await d2.stop();
      }
    } finally {
      first.proc.kill('SIGKILL');
    }
  }, 60_000);
});
