/**
 * docs/PROTOCOL.md section 3, "A new daemon instance", end to end: a real
 * daemon killed with kill -9 and started again on the same state directory.
 * The worker that was draining at the crash is not restored (2.7), so it is
 * missing from the new instance's first ping: the receiver reports it lost
 * with reason daemon_restarted; the worker that goes on beating is not.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HeartbeatClient } from '../../src/client/index.js';
import { startReceiver, type ReceiverEvent } from '../../src/receiver/index.js';
import { spawnHbagg, startNatsServer, uniquePrefix, waitFor, type HbaggProcess } from '../../testing/index.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

describe('a daemon restarted on its state directory', () => {
  it('has the worker missing from its first ping reported lost (daemon_restarted) once, and no other', async () => {
    const nats = await startNatsServer();
    cleanup.push(() => nats.stop());
    const receiver = await startReceiver();
    cleanup.push(() => receiver.close());
    const prefix = uniquePrefix();
    const env = {
      HBAGG_NODE_ID: 'restarting', HBAGG_NATS_URL: nats.url, HBAGG_PLATFORM_URL: `${receiver.url}/v1/heartbeats`,
      HBAGG_HTTP_LISTEN: '127.0.0.1:0', HBAGG_STATE_DIR: mkdtempSync(path.join(tmpdir(), 'hbagg-state-')),
      HBAGG_SUBJECT_PREFIX: prefix, HBAGG_MIN_INTERVAL_MS: '200', HBAGG_MAX_INTERVAL_MS: '1000',
    };
    const daemon = (): HbaggProcess => {
      const d = spawnHbagg(['run'], env);
      cleanup.push(async () => {
        d.proc.kill('SIGKILL');
        await d.exited;
      });
      return d;
    };
    const first = daemon();
    const keep = new HeartbeatClient({ worker: 'keep', servers: nats.url, subjectPrefix: prefix, intervalMs: 300 });
    const drain = new HeartbeatClient({ worker: 'drain', servers: nats.url, subjectPrefix: prefix, intervalMs: 300 });
    cleanup.push(() => keep.close(), () => drain.close());
    await Promise.all([keep.start(), drain.start()]);
    const state = (worker: string) => receiver.handler.workers().find((w) => w.worker === worker && w.current)?.state;
    await waitFor(() => state('keep') === 'active' && state('drain') === 'active', { timeoutMs: 20_000, message: 'both workers active' });
    expect(await drain.leave('draining', { drainTimeoutMs: 120_000 })).toMatchObject({ ok: true });
    await waitFor(() => state('drain') === 'draining', { timeoutMs: 10_000, message: 'drain is draining' });

    first.proc.kill('SIGKILL');
    await first.exited;
    await drain.close();
    daemon();
    const restarted = await waitFor(() => receiver.events.find((e) => e.type === 'node' && e.change === 'restarted'), {
      timeoutMs: 20_000, message: 'the node restarted',
    });
    await waitFor(() => state('drain') === 'lost', { timeoutMs: 10_000, message: 'drain lost' });
    const lost = receiver.events.filter((e): e is Extract<ReceiverEvent, { type: 'worker' }> => e.type === 'worker' && e.change === 'lost');
    expect(lost).toEqual([expect.objectContaining({ worker: 'drain', reason: 'daemon_restarted', instance: drain.instance })]);
    expect(restarted).toMatchObject({ node: 'restarting' });
    // The worker that went on beating stays active under the new daemon.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(state('keep')).toBe('active');
    expect(receiver.events.filter((e) => e.type === 'worker' && e.change === 'lost')).toHaveLength(1);
  }, 60_000);
});
