/**
 * Counting beats exactly when answers are lost (docs/PROTOCOL.md 2.1, section 3): the platform
 * processes pings but answers after the daemon's timeout, so the daemon
 * resends their beats in rebuilt pings with new batch ids. Summing `beats`
 * counts them twice; the difference of `beats_total` counts each once.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ping } from '../../src/protocol/schemas.js';
import {
  natsClient,
  sleep,
  startNatsServer,
  startPlatformStub,
  startTestDaemon,
  waitFor,
  type NatsServerHandle,
  type PlatformStub,
} from '../../testing/index.js';

describe('beats_total when the platform answers too late (3)', () => {
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

  it('lets the platform count every beat exactly once by difference of beats_total, where summing beats counts some twice', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hbagg-late-'));
    const file = path.join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ platform: { timeout_ms: 300 } }));
    // The platform processes every ping it receives; while `slow`, its answer comes after the daemon gave up.
    let slow = true;
    stub.respondWith(async () => {
      if (slow) await sleep(700);
      return { status: 200, body: {} };
    });
    const d = await startTestDaemon({
      natsUrl: nats.url, platformUrl: stub.url, file,
      env: { HBAGG_MIN_INTERVAL_MS: '100', HBAGG_MAX_INTERVAL_MS: '400' },
    });
    try {
      const total = 30;
      for (let seq = 1; seq <= total; seq++) {
        nc.publish(`${d.prefix}.beat.w1`, JSON.stringify({ v: 1, worker: 'w1', instance: 'i1', seq, interval_ms: 1000 }));
        await sleep(40);
        if (seq === 20) slow = false;
      }
      await nc.flush();
      const processed = () => stub.requests.flatMap((r) => (r.body as Ping).workers ?? []).filter((e) => e.worker === 'w1');
      await waitFor(() => stub.accepted().some((r) => (r.body as Ping).workers.some((e) => e.worker === 'w1' && e.beats === 0)), {
        timeoutMs: 10_000,
        message: 'every beat accepted (an entry with beats 0 follows)',
      });
      // What a platform that counts by difference sees: every processed entry, in arrival order.
      let last = 0;
      let byDifference = 0;
      for (const e of processed()) {
        const n = e.beats_total ?? 0;
        byDifference += Math.max(0, n - last);
        last = Math.max(last, n);
      }
      const bySum = processed().reduce((n, e) => n + e.beats, 0);
      expect(bySum).toBeGreaterThan(total); // the lost answers made the daemon resend beats
      expect(byDifference).toBe(total);
    } finally {
      await d.stop();
    }
  }, 30_000);
});
