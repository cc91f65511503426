import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Ping, PingWorker } from '../../src/protocol/index.js';
import { jetstreamStore, startReceiver, type Receiver } from '../../src/receiver/index.js';
import {
  EventReader, natsClient, spawnHbagg, startNatsServer, waitFor, type HbaggProcess, type NatsServerHandle,
} from '../../testing/index.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

async function jsServer(): Promise<NatsServerHandle> {
  const s = await startNatsServer({ jetstream: true });
  cleanup.push(() => s.stop());
  return s;
}

async function replica(servers: string[], bucket: string, stream: string, forgetNodesAfterMs?: number): Promise<Receiver> {
  const r = await startReceiver({
    ...(forgetNodesAfterMs === undefined ? {} : { forgetNodesAfterMs }),
    store: jetstreamStore({ servers, bucket, stream, subject: `ev.${stream}`, timeoutMs: 1_000 }),
    leaseCheckMs: 50,
    retryAfterSeconds: 1,
  });
  cleanup.push(() => r.close());
  return r;
}

const names = () => {
  const id = randomBytes(3).toString('hex');
  return { bucket: `b_${id}`, stream: `S_${id}` };
};

function worker(id: string, over: Partial<PingWorker> = {}): PingWorker {
  const now = Date.now();
  return { worker: id, instance: `${id}-i1`, state: 'active', since: now, first_seen: now, last_seen: now, beats: 3, seq: 7, ...over };
}

let seq = 0;
function ping(workers: PingWorker[], over: Partial<Ping['batch']> = {}, node = 'node-a', daemon = 'd1'): Ping {
  seq++;
  return {
    v: 1, node, daemon: { instance: daemon, version: '1.0.0', started_at: Date.now() },
    batch: { id: `${node}:${daemon}:${seq}`, seq, part: 1, parts: 1, sent_at: Date.now(), next_ping_within_ms: 30_000, final: false, ...over },
    workers,
  };
}

async function post(url: string, body: Ping) {
  const res = await fetch(`${url}/v1/heartbeats`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': body.batch.id }, body: JSON.stringify(body),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Record<string, unknown> };
}

const nodesOf = async (r: Receiver) => ((await (await fetch(`${r.url}/v1/nodes`)).json()) as { nodes: unknown[] }).nodes;

describe('receiver replicas on one JetStream KV bucket', () => {
  it('applies the same ping delivered to both replicas at once exactly once, and publishes its events once', async () => {
    const nats = await jsServer();
    const { bucket, stream } = names();
    const [a, b] = [await replica([nats.url], bucket, stream), await replica([nats.url], bucket, stream)];
    const reader = await EventReader.open([nats.url], stream);
    cleanup.push(() => reader.close());
    for (let i = 0; i < 10; i++) {
      const p = ping([worker('w1'), worker(`x${i}`)], {}, `node-${i}`);
      const answers = await Promise.all([post(a.url, p), post(b.url, p)]);
      expect(answers.map((x) => x.status)).toEqual([200, 200]);
    }
    const sa = a.stats();
    const sb = b.stats();
    expect(sa.pings + sb.pings).toBe(10);
    expect(sa.duplicates + sb.duplicates).toBe(10);
    // appeared (node) + two workers appeared, per node.
    const events = await waitFor(async () => ((await reader.poll()).length >= 30 ? reader.events : undefined), {
      timeoutMs: 10_000, message: '30 events in the stream',
    });
    await reader.poll();
    expect(events).toHaveLength(30);
    expect(new Set(events.map((e) => e.id)).size).toBe(30);
    await waitFor(async () => JSON.stringify(await nodesOf(a)) === JSON.stringify(await nodesOf(b)), { timeoutMs: 5_000, message: 'replicas agree' });
    expect(await nodesOf(a)).toHaveLength(10);
  });

  it('never loses a write when both replicas update one node at the same time', async () => {
    const nats = await jsServer();
    const { bucket, stream } = names();
    const [a, b] = [await replica([nats.url], bucket, stream), await replica([nats.url], bucket, stream)];
    await post(a.url, ping([], {}, 'busy'));
    // Twenty different pings of one node, half to each replica, all at once: each adds one worker.
    const pings = Array.from({ length: 20 }, (_, i) => ping([worker(`w${i}`, { state: 'stopped' })], {}, 'busy'));
    const answers = await Promise.all(pings.map((p, i) => post(i % 2 === 0 ? a.url : b.url, p)));
    expect(answers.filter((x) => x.status !== 200)).toEqual([]);
    const read = await waitFor(() => {
      const n = a.handler.node('busy');
      return n !== undefined && n.workers.length === 20 ? n : undefined;
    }, { timeoutMs: 5_000, message: 'all 20 workers on replica a' });
    expect(read.counts.stopped).toBe(20);
    const conflicts = /hbagg_receiver_conflicts_total (\d+)/;
    const total = Number(conflicts.exec(await a.handler.metrics())?.[1]) + Number(conflicts.exec(await b.handler.metrics())?.[1]);
    expect(total).toBeGreaterThan(0);
  });

  it('answers 503 with Retry-After and fails /readyz while the store is down, and applies nothing half', async () => {
    const nats = await jsServer();
    const { bucket, stream } = names();
    const r = await replica([nats.url], bucket, stream);
    expect((await post(r.url, ping([worker('w1')], {}, 'n1'))).status).toBe(200);
    expect((await fetch(`${r.url}/readyz`)).status).toBe(200);
    await nats.stop();
    const refused = ping([worker('w1', { state: 'stopped' })], {}, 'n1');
    const answer = await post(r.url, refused);
    expect(answer).toMatchObject({ status: 503, retryAfter: '1' });
    expect(String(answer.body.error)).toMatch(/^store unavailable: /);
    expect((await fetch(`${r.url}/readyz`)).status).toBe(503);
    expect(await (await fetch(`${r.url}/livez`)).status).toBe(200);
    await nats.restart();
    await waitFor(async () => (await fetch(`${r.url}/readyz`)).status === 200, { timeoutMs: 15_000, message: 'ready again' });
    // The refused ping left nothing behind: the worker is still active, and the retry applies it.
    expect(r.handler.node('n1')?.counts).toMatchObject({ active: 1, stopped: 0 });
    const fresh = await replica([nats.url], bucket, stream);
    expect((await fresh.handler.store.read('n1'))?.record.applied).not.toContain(refused.batch.id);
    await waitFor(async () => (await post(r.url, refused)).status === 200, { timeoutMs: 10_000, message: 'the retried ping applies' });
    expect(r.handler.node('n1')?.counts).toMatchObject({ active: 0, stopped: 1 });
  });
});

describe('nodes that come and go', () => {
  it('are deleted from the bucket some time after their final ping, and appear again when they return', async () => {
    const nats = await jsServer();
    const { bucket, stream } = names();
    const [a, b] = [await replica([nats.url], bucket, stream, 300), await replica([nats.url], bucket, stream, 300)];
    expect((await post(a.url, ping([worker('w1')], { final: true }, 'gone'))).status).toBe(200);
    await waitFor(() => a.handler.node('gone') === undefined && b.handler.node('gone') === undefined, {
      timeoutMs: 10_000, message: 'forgotten on both replicas',
    });
    expect(await a.handler.store.read('gone')).toBeUndefined();
    expect((await post(b.url, ping([worker('w1')], {}, 'gone'))).status).toBe(200);
    expect(b.events.filter((e) => e.type === 'node' && e.change === 'appeared')).toHaveLength(1);
    await waitFor(() => a.handler.node('gone')?.state === 'alive', { timeoutMs: 5_000, message: 'back on replica a' });
  });
});

describe('a daemon killed with kill -9', () => {
  let daemon: HbaggProcess | undefined;
  afterEach(() => {
    daemon?.proc.kill('SIGKILL');
  });

  it('has its node declared expired once, after its lease, across two replicas', async () => {
    const nats = await jsServer();
    const { bucket, stream } = names();
    const [a, b] = [await replica([nats.url], bucket, stream), await replica([nats.url], bucket, stream)];
    const reader = await EventReader.open([nats.url], stream);
    cleanup.push(() => reader.close());
    daemon = spawnHbagg(['run'], {
      HBAGG_NODE_ID: 'doomed', HBAGG_NATS_URL: nats.url, HBAGG_PLATFORM_URL: `${a.url}/v1/heartbeats`,
      HBAGG_HTTP_LISTEN: '127.0.0.1:0', HBAGG_STATE_DIR: mkdtempSync(path.join(tmpdir(), 'hbagg-state-')),
      HBAGG_SUBJECT_PREFIX: `t${randomBytes(3).toString('hex')}`, HBAGG_MIN_INTERVAL_MS: '200', HBAGG_MAX_INTERVAL_MS: '1000',
    });
    const nc = await natsClient(nats.url);
    cleanup.push(() => nc.close());
    await waitFor(() => b.handler.node('doomed')?.state === 'alive', { timeoutMs: 20_000, message: 'node alive on replica b' });
    const lease = b.handler.node('doomed')!.lease_ms;
    daemon.proc.kill('SIGKILL');
    const killedAt = Date.now();
    const expired = () => reader.events.filter((e) => e.type === 'node' && e.change === 'expired' && e.node === 'doomed');
    await waitFor(async () => (await reader.poll(), expired().length > 0), { timeoutMs: lease + 15_000, message: 'node expired' });
    // A few more sweeps of both replicas: still once.
    await waitFor(() => a.handler.node('doomed')?.state === 'expired' && b.handler.node('doomed')?.state === 'expired', { timeoutMs: 5_000 });
    // Not before the lease of the last ping had passed.
    const view = a.handler.node('doomed')!;
    expect(view.lease_until).toBe(view.last_ping + view.lease_ms);
    expect(view.last_ping).toBeLessThanOrEqual(killedAt + 1_000);
    expect(expired()[0]!.at).toBeGreaterThanOrEqual(view.lease_until);
    await new Promise((r) => setTimeout(r, 500));
    await reader.poll();
    expect(expired()).toHaveLength(1);
    const byReplica = [a, b].map((r) => r.events.filter((e) => e.type === 'node' && e.change === 'expired').length);
    expect(byReplica.reduce((x, y) => x + y)).toBe(1);
  }, 60_000);
});

describe('hbagg receive --store', () => {
  it('names each bad flag and exits 2', async () => {
    const p = spawnHbagg(['receive', '--bucket', 'a.b', '--replicas', '9']);
    expect(await p.exited).toBe(2);
    expect(p.stderr()).toMatch(/--replicas expects an integer from 1 to 5, got "9"/);
    expect(p.stderr()).toMatch(/--bucket and --replicas need --store/);
    expect(p.stderr()).toMatch(/--bucket expects letters, digits, - and _, got "a.b"/);
    const q = spawnHbagg(['receive', '--store', 'http://x']);
    expect(await q.exited).toBe(2);
    expect(q.stderr()).toMatch(/--store expects nats:\/\/HOST:PORT/);
  });

  it('exits 1 naming the store when it cannot reach it', async () => {
    const nats = await startNatsServer({ jetstream: true });
    const url = nats.url;
    await nats.stop();
    const p = spawnHbagg(['receive', '--port', '0', '--store', url]);
    expect(await p.exited).toBe(1);
    expect(p.stderr()).toContain(`hbagg receive: cannot start (the store at ${url}`);
  }, 30_000);
});
