/**
 * The receivers' fault test: a 3-member JetStream cluster holding an R3
 * bucket, two `hbagg receive` replicas (child processes) behind a round-robin
 * proxy, a real daemon and real workers; one nats-server and then one
 * receiver are killed mid-run.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { HeartbeatClient } from '../../src/client/index.js';
import type { Ping } from '../../src/protocol/index.js';
import type { NodeView, RecordEvent, WorkerView } from '../../src/receiver/index.js';
import {
  EventReader, spawnHbagg, startNatsCluster, startNatsServer, startRoundRobinProxy, startTestDaemon, waitFor, type HbaggProcess,
} from '../../testing/index.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

interface ReceiverProcess {
  url: string;
  child: HbaggProcess;
}

async function receiverProcess(servers: string[], bucket: string): Promise<ReceiverProcess> {
  const child = spawnHbagg(['receive', '--port', '0', '--store', servers.join(','), '--bucket', bucket, '--replicas', '3', '--json']);
  cleanup.push(async () => {
    child.proc.kill('SIGKILL');
    await child.exited;
  });
  let exited = false;
  void child.exited.then(() => (exited = true));
  const url = await waitFor(() => {
    if (exited) throw new Error(`hbagg receive exited: ${child.stderr()}`);
    return /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(child.stderr())?.[1];
  }, { timeoutMs: 30_000, message: 'receiver listening', intervalMs: 100 }).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\n--- receiver output ---\n${child.out()}`);
  });
  return { url, child };
}

const get = async <T>(url: string): Promise<T> => (await (await fetch(url)).json()) as T;
const nodesOf = (r: ReceiverProcess) => get<{ nodes: NodeView[] }>(`${r.url}/v1/nodes`).then((b) => b.nodes);
const workersOf = (r: ReceiverProcess) => get<{ workers: WorkerView[] }>(`${r.url}/v1/workers`).then((b) => b.workers);

describe('receivers sharing an R3 bucket on a 3-node JetStream cluster', () => {
  it('lose nothing the daemon had accepted when a nats-server and then a receiver are killed, and publish each stopped/lost once', async () => {
    const cluster = await startNatsCluster(3);
    cleanup.push(() => cluster.stop());
    const bus = await startNatsServer();
    cleanup.push(() => bus.stop());
    const bucket = `b_${randomBytes(3).toString('hex')}`;
    const [a, b] = await Promise.all([receiverProcess(cluster.urls, bucket), receiverProcess(cluster.urls, bucket)]);
    let targets = [a.url, b.url];
    const proxy = await startRoundRobinProxy(() => targets);
    cleanup.push(() => proxy.close());
    const reader = await EventReader.open(cluster.urls, 'HBAGG_EVENTS', `reader_${bucket}`);
    cleanup.push(() => reader.close());

    const daemon = await startTestDaemon({
      natsUrl: bus.url,
      platformUrl: `${proxy.url}/v1/heartbeats`,
      env: { HBAGG_NODE_ID: 'cluster-node', HBAGG_MIN_INTERVAL_MS: '200', HBAGG_MAX_INTERVAL_MS: '1000', HBAGG_LOST_AFTER_MIN_MS: '1000' },
    });
    cleanup.push(() => daemon.stop());
    const ids = ['stop-1', 'lost-1', 'stop-2', 'lost-2', 'keep-1', 'keep-2'];
    const workers = new Map(ids.map((id) => [id, new HeartbeatClient({ worker: id, servers: bus.url, subjectPrefix: daemon.prefix, intervalMs: 300 })]));
    cleanup.push(() => Promise.all([...workers.values()].map((w) => w.close())));
    await Promise.all([...workers.values()].map((w) => w.start()));
    await waitFor(async () => (await workersOf(b)).filter((w) => w.state === 'active').length === 6, {
      timeoutMs: 20_000, intervalMs: 200, message: 'six active workers on replica b',
    });

    // Fault 1: a cluster member dies; then one worker leaves and one vanishes.
    await cluster.servers[0]!.kill();
    await workers.get('stop-1')!.leave('stopped', { reason: 'done' });
    workers.get('lost-1')!.stop();
    await waitFor(async () => {
      const ws = await workersOf(b);
      return ws.some((w) => w.worker === 'stop-1' && w.state === 'stopped') && ws.some((w) => w.worker === 'lost-1' && w.state === 'lost');
    }, { timeoutMs: 25_000, intervalMs: 200, message: 'stop-1 stopped and lost-1 lost with a member down' });

    // Fault 2: a receiver dies (kill -9); the proxy keeps sending it every other ping.
    a.child.proc.kill('SIGKILL');
    await a.child.exited;
    await workers.get('stop-2')!.leave('stopped', { reason: 'done' });
    workers.get('lost-2')!.stop();
    // In the order the receiver lists them (by worker id).
    const expected = { 'keep-1': 'active', 'keep-2': 'active', 'lost-1': 'lost', 'lost-2': 'lost', 'stop-1': 'stopped', 'stop-2': 'stopped' };
    const states = async (r: ReceiverProcess) => Object.fromEntries((await workersOf(r)).map((w) => [w.worker, w.state]));
    await waitFor(async () => JSON.stringify(await states(b)) === JSON.stringify(expected), {
      timeoutMs: 25_000, intervalMs: 200, message: 'replica b has every transition',
    });
    // A new replica in place of the dead one reads the same truth from the bucket.
    const a2 = await receiverProcess(cluster.urls, bucket);
    targets = [a2.url, b.url];
    await waitFor(async () => JSON.stringify(await nodesOf(a2)) === JSON.stringify(await nodesOf(b)) && JSON.stringify(await workersOf(a2)) === JSON.stringify(await workersOf(b)), {
      timeoutMs: 15_000, intervalMs: 200, message: 'both replicas agree',
    });
    expect(await states(a2)).toEqual(expected);
    // Every beat in a ping the daemon saw accepted is counted (a ping applied whose answer was lost may count twice).
    const acceptedBeats = proxy.accepted.map((t) => JSON.parse(t) as Ping).reduce((n, p) => n + p.workers.reduce((m, w) => m + w.beats, 0), 0);
    expect(acceptedBeats).toBeGreaterThan(0);
    expect((await nodesOf(b))[0]!.beats).toBeGreaterThanOrEqual(acceptedBeats);

    const key = (e: RecordEvent) => (e.type === 'worker' ? `${e.worker}:${e.instance}:${e.change}` : `node:${e.change}`);
    const terminal = (events: RecordEvent[]) => events.filter((e) => e.type === 'worker' && (e.change === 'stopped' || e.change === 'lost')).map(key).sort();
    await waitFor(async () => terminal(await reader.poll()).length >= 4, { timeoutMs: 15_000, intervalMs: 200, message: 'four terminal events in the stream' });
    await new Promise((r) => setTimeout(r, 1_000));
    await reader.poll();
    const inst = (id: string) => workers.get(id)!.instance;
    expect(terminal(reader.events)).toEqual(
      [`lost-1:${inst('lost-1')}:lost`, `lost-2:${inst('lost-2')}:lost`, `stop-1:${inst('stop-1')}:stopped`, `stop-2:${inst('stop-2')}:stopped`].sort(),
    );
    // No event of any kind twice.
    const ids2 = reader.events.map((e) => e.id);
    expect(ids2.length).toBe(new Set(ids2).size);
  }, 120_000);
});
