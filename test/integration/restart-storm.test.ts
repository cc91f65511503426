/**
 * What a restart storm and a worker id claimed twice cost is said, not
 * silent (docs/PROTOCOL.md 2.8, section 4): with the platform down, one worker
 * restarting over and over fills the bounded memory for replaced instances
 * and tombstones; the reports and retirements dropped are metrics and one
 * rate-limited warning. A replaced instance that goes on beating (two
 * processes, one worker id) is counted and named in a rate-limited warning.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
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

const beat = (worker: string, instance: string, seq: number) => JSON.stringify({ v: 1, worker, instance, seq, interval_ms: 1000 });

/** The value of one series in the daemon's /metrics text (undefined when absent). */
async function metric(d: TestDaemon, series: string): Promise<number | undefined> {
  const text = await (await fetch(`${d.base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('restart storms and conflicting instances (2.8)', () => {
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

  it('counts and logs, rate-limited, the lost reports and retirements a restart storm drops while the platform answers 500', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hbagg-storm-'));
    const file = path.join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ workers: { max_workers: 5, max_tombstones: 10 } }));
    stub.respondWith({ status: 500, body: 'down' });
    const d = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, file, env: { HBAGG_LOG_LEVEL: 'info' } });
    try {
      // 31 instances of one worker: 30 restarts, each old instance `lost (restarted)` and owed to the platform.
      for (let i = 0; i <= 30; i++) nc.publish(`${d.prefix}.beat.flapper`, beat('flapper', `i${i}`, 1));
      await nc.flush();
      // At most 5 replaced instances are kept: 25 reports dropped. At most 10 tombstones: 20 evicted early.
      await waitFor(async () => (await metric(d, 'hbagg_lost_reports_dropped_total{reason="too_many_replaced"}')) === 25, {
        message: 'dropped reports counted',
      });
      expect(await metric(d, 'hbagg_tombstones_evicted_early_total')).toBe(20);
      const warned = () => d.logs.filter((l) => l.level === 'warn' && l.reason === 'too_many_replaced');
      await waitFor(() => warned().length > 0, { message: 'dropped reports logged' });
      const evictions = () => d.logs.filter((l) => l.level === 'warn' && l.reason === 'too_many_tombstones');
      await waitFor(() => evictions().length > 0, { message: 'early evictions logged' });
      // Rate-limited: not one line per drop; what the lines say adds up, and says why.
      expect(warned().length).toBeLessThanOrEqual(2);
      expect(warned().reduce((n, l) => n + Number(l.dropped), 0)).toBeLessThanOrEqual(25);
      expect(String(warned()[0]!.msg)).toMatch(/^dropped \d+ lost report\(s\) of replaced instances: more than max_workers \(5\)/);
      expect(String(evictions()[0]!.msg)).toMatch(/^forgot \d+ retired instance\(s\) before tombstone_retention_ms/);
    } finally {
      await d.stop();
    }
  }, 30_000);

  it('counts the beats of a replaced instance that goes on beating and names both instances in one rate-limited warning', async () => {
    stub.respondWith({ status: 200, body: {} });
    const d = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, env: { HBAGG_LOG_LEVEL: 'info' } });
    try {
      expect(await metric(d, 'hbagg_instance_conflicts_total')).toBe(0);
      nc.publish(`${d.prefix}.beat.twin`, beat('twin', 'old', 1));
      await nc.flush();
      nc.publish(`${d.prefix}.beat.twin`, beat('twin', 'new', 1)); // a second process with the same worker id
      await nc.flush();
      for (let seq = 2; seq <= 4; seq++) nc.publish(`${d.prefix}.beat.twin`, beat('twin', 'old', seq));
      await nc.flush();
      await waitFor(async () => (await metric(d, 'hbagg_instance_conflicts_total')) === 3, { message: 'conflicts counted' });
      const warned = d.logs.filter((l) => l.level === 'warn' && String(l.msg).startsWith('two processes claim worker twin'));
      expect(warned).toHaveLength(1);
      expect(warned[0]).toMatchObject({ worker: 'twin', instance: 'old', current_instance: 'new' });
      expect(String(warned[0]!.msg)).toContain('instance old still beats though new replaced it');
      // The old instance's beats are still dropped, as before.
      expect((await d.daemon.snapshot()).beatsRejected.suppressed).toBe(3);
    } finally {
      await d.stop();
    }
  }, 30_000);
});
