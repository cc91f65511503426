import { afterEach, describe, expect, it } from 'vitest';
import type { Ping, PingWorker } from '../../src/protocol/index.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createReceiver, startReceiver, type Receiver, type ReceiverEvent } from '../../src/receiver/index.js';
import { waitFor } from '../../testing/index.js';

const open: Receiver[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});

async function receiver(opts: Parameters<typeof startReceiver>[0] = {}): Promise<Receiver> {
  const r = await startReceiver(opts);
  open.push(r);
  return r;
}

function worker(id: string, over: Partial<PingWorker> = {}): PingWorker {
  const now = Date.now();
  return { worker: id, instance: `${id}-i1`, state: 'active', since: now, first_seen: now, last_seen: now, beats: 3, seq: 7, ...over };
}

let seq = 0;
function ping(workers: PingWorker[], over: Partial<Ping['batch']> = {}, node = 'node-a', daemon = 'd1'): Ping {
  seq++;
  return {
    v: 1,
    node,
    daemon: { instance: daemon, version: '1.0.0', started_at: Date.now() },
    batch: {
      id: `${node}:${daemon}:${seq}`, seq, part: 1, parts: 1, sent_at: Date.now(),
      next_ping_within_ms: 30_000, final: false, ...over,
    },
    workers,
  };
}

async function post(r: Receiver, body: unknown, headers: Record<string, string> = {}) {
  const key = (body as Ping | undefined)?.batch?.id;
  const res = await fetch(`${r.url}/v1/heartbeats`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const changes = (events: readonly ReceiverEvent[]) =>
  events.map((e) => (e.type === 'worker' ? `${e.worker} ${e.change}` : `${e.type} ${e.change}`));

describe('reference receiver', () => {
  it('accepts a valid ping and reports the node and its workers as they appear', async () => {
    const r = await receiver();
    const answer = await post(r, ping([worker('w1'), worker('w2', { beats: 5 })]));
    expect(answer).toEqual({ status: 200, body: { ok: true, delta: true } });
    expect(changes(r.events)).toEqual(['node appeared', 'w1 appeared', 'w2 appeared']);
    expect(r.stats()).toMatchObject({ pings: 1, beats: 8, rejected: 0, workers: { active: 2 } });
  });

  it('answers next_interval_ms when it is configured', async () => {
    const r = await receiver({ nextIntervalMs: 5000 });
    expect(await post(r, ping([]))).toEqual({ status: 200, body: { ok: true, next_interval_ms: 5000, delta: true } });
  });

  it('reports draining, stopped, restarted, lost and returned workers, once each', async () => {
    const r = await receiver();
    await post(r, ping([worker('w1'), worker('w2')]));
    await post(r, ping([worker('w1', { state: 'draining', reason: 'SIGTERM' }), worker('w2')]));
    await post(r, ping([worker('w1', { state: 'stopped', reason: 'SIGTERM' }), worker('w1', { instance: 'w1-i2' }), worker('w2', { state: 'lost', reason: 'heartbeat_timeout' })]));
    await post(r, ping([worker('w1', { instance: 'w1-i2' }), worker('w2')]));
    await post(r, ping([worker('w1', { instance: 'w1-i2' }), worker('w2')]));
    expect(changes(r.events)).toEqual([
      'node appeared', 'w1 appeared', 'w2 appeared',
      'w1 draining',
      'w1 stopped', 'w1 restarted', 'w2 lost',
      'w2 returned',
    ]);
    const restarted = r.events.find((e) => e.type === 'worker' && e.change === 'restarted');
    expect(restarted).toMatchObject({ instance: 'w1-i2', previous: 'w1-i1' });
    expect(r.events.find((e) => e.type === 'worker' && e.change === 'lost')).toMatchObject({ reason: 'heartbeat_timeout' });
  });

  it('rejects pings that break the schema with 400 and errors that name the field', async () => {
    const r = await receiver();
    const bad = ping([worker('w1')]);
    (bad.batch as Record<string, unknown>).next_ping_within_ms = -1;
    (bad.workers[0] as Record<string, unknown>).state = 'sleeping';
    const answer = await post(r, bad);
    expect(answer.status).toBe(400);
    expect(String(answer.body.error)).toMatch(/^invalid ping: /);
    expect(answer.body.issues).toEqual(
      expect.arrayContaining([expect.stringMatching(/^batch\.next_ping_within_ms: /), expect.stringMatching(/^workers\.0\.state: /)]),
    );
    expect(r.stats()).toMatchObject({ pings: 0, rejected: 1 });
    expect(changes(r.events)).toEqual(['request rejected']);
  });

  it('rejects bad JSON, another version, a missing or wrong idempotency-key and a wrong content-type', async () => {
    const r = await receiver();
    const cases: [unknown, Record<string, string>, number, RegExp][] = [
      ['{"v": 1,', { 'idempotency-key': 'k1' }, 400, /^body is not JSON/],
      [{ ...ping([]), v: 2 }, {}, 400, /^v: version 2 is not supported/],
      [{ ...ping([]), batch: undefined }, { 'idempotency-key': 'k2' }, 400, /^invalid ping: batch: /],
      [JSON.stringify(ping([])), {}, 400, /^missing idempotency-key/],
      [ping([]), { 'idempotency-key': 'not-the-id' }, 400, /differs from batch\.id/],
      [ping([worker('w1'), worker('w1')]), {}, 400, /listed twice/],
      [ping([]), { 'content-type': 'text/plain' }, 415, /^content-type must be application\/json/],
    ];
    for (const [body, headers, status, error] of cases) {
      const answer = await post(r, body, headers);
      expect(answer.status, JSON.stringify(body)).toBe(status);
      expect(String(answer.body.error)).toMatch(error);
    }
    expect(r.stats()).toMatchObject({ pings: 0, rejected: cases.length });
  });

  it('asks for the bearer token when one is configured', async () => {
    const r = await receiver({ token: 's3cret' });
    expect((await post(r, ping([]))).status).toBe(401);
    expect((await post(r, ping([]), { authorization: 'Bearer s3cret' })).status).toBe(200);
  });

  it('answers a repeated idempotency-key with the same answer and applies it once', async () => {
    const r = await receiver({ nextIntervalMs: 2000 });
    const p = ping([worker('w1', { beats: 4 })]);
    const first = await post(r, p);
    const second = await post(r, p);
    expect(second).toEqual(first);
    expect(r.stats()).toMatchObject({ pings: 1, duplicates: 1, beats: 4 });
    expect(changes(r.events)).toEqual(['node appeared', 'w1 appeared']);
  });

  it('expires a node whose lease passes without a ping, and reports it back when it pings again', async () => {
    const r = await receiver({ leaseCheckMs: 20 });
    await post(r, ping([worker('w1')], { next_ping_within_ms: 150 }));
    const expired = await waitFor(() => r.events.find((e) => e.type === 'node' && e.change === 'expired'), {
      timeoutMs: 3000,
      message: 'node lease expired',
    });
    expect(expired).toMatchObject({ node: 'node-a', lease_ms: 150, workers: 1 });
    expect(r.stats().nodes).toEqual({ alive: 0, expired: 1, final: 0 });
    await post(r, ping([worker('w1')]));
    expect(changes(r.events).slice(-1)).toEqual(['node returned']);
  });

  it('does not expire a node whose final ping released its lease', async () => {
    const r = await receiver({ leaseCheckMs: 20 });
    await post(r, ping([], { next_ping_within_ms: 50, final: true }));
    expect(changes(r.events)).toEqual(['node appeared', 'node final']);
    // Wait past the lease on something observable: a second node's shorter lease.
    await post(r, ping([], { next_ping_within_ms: 100 }, 'node-b'));
    await waitFor(() => r.stats().nodes.expired === 1, { timeoutMs: 3000, message: 'node-b expired' });
    expect(r.stats().nodes).toEqual({ alive: 0, expired: 1, final: 1 });
  });

  it('reports a new daemon instance on the same node as a restart', async () => {
    const r = await receiver();
    await post(r, ping([], {}, 'node-a', 'd1'));
    await post(r, ping([], {}, 'node-a', 'd2'));
    expect(r.events.at(-1)).toMatchObject({ type: 'node', change: 'restarted', daemon: 'd2', previous: 'd1' });
  });

  it('reports a worker missing from a restarted daemon first ping as lost, reason daemon_restarted, once', async () => {
    const r = await receiver();
    await post(r, ping([worker('w1'), worker('w2')], {}, 'node-a', 'd1'));
    await post(r, ping([worker('w1')], {}, 'node-a', 'd2'));
    await post(r, ping([worker('w1')], {}, 'node-a', 'd2'));
    expect(changes(r.events)).toEqual(['node appeared', 'w1 appeared', 'w2 appeared', 'node restarted', 'w2 lost']);
    expect(r.events.at(-1)).toMatchObject({ type: 'worker', worker: 'w2', instance: 'w2-i1', reason: 'daemon_restarted' });
    const lost = (await (await fetch(`${r.url}/v1/workers?state=lost`)).json()) as { workers: unknown[] };
    expect(lost.workers).toEqual([expect.objectContaining({ node: 'node-a', worker: 'w2', state: 'lost', reason: 'daemon_restarted' })]);
  });

  it('answers the query and probe routes', async () => {
    const r = await receiver({ token: 't0k' });
    await post(r, ping([worker('w1'), worker('w2', { state: 'draining' })], {}, 'node/b'), { authorization: 'Bearer t0k' });
    const auth = { headers: { authorization: 'Bearer t0k' } };
    expect((await fetch(`${r.url}/v1/nodes`)).status).toBe(401);
    const nodes = (await (await fetch(`${r.url}/v1/nodes`, auth)).json()) as { nodes: Record<string, unknown>[] };
    expect(nodes.nodes).toEqual([expect.objectContaining({ node: 'node/b', state: 'alive', counts: { active: 1, draining: 1, stopped: 0, lost: 0 } })]);
    const one = (await (await fetch(`${r.url}/v1/nodes/${encodeURIComponent('node/b')}`, auth)).json()) as { workers: unknown[] };
    expect(one.workers).toHaveLength(2);
    expect((await fetch(`${r.url}/v1/nodes/nope`, auth)).status).toBe(404);
    const draining = (await (await fetch(`${r.url}/v1/workers?state=draining`, auth)).json()) as { workers: { worker: string }[] };
    expect(draining.workers.map((w) => w.worker)).toEqual(['w2']);
    const bad = await fetch(`${r.url}/v1/workers?state=sleeping`, auth);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/^state must be one of active, draining, stopped, lost/);
    expect((await fetch(`${r.url}/livez`)).status).toBe(200);
    expect((await fetch(`${r.url}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${r.url}/metrics`)).text();
    expect(metrics).toMatch(/^hbagg_receiver_pings_applied_total 1$/m);
    expect(metrics).toMatch(/hbagg_receiver_apply_seconds_count 1/);
  });

  it('mounts in a plain node:http server as the README shows, and tells its event hook', async () => {
    const seen: ReceiverEvent[] = [];
    const receiver = await createReceiver({ tokens: ['a', 'b'], onEvent: (e) => seen.push(e) });
    const off = receiver.on('event', (e) => seen.push(e));
    const server = createServer(receiver).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const p = ping([worker('w1')], {}, 'mounted');
      const res = await fetch(`${url}/anything`, {
        method: 'POST', body: JSON.stringify(p), headers: { 'content-type': 'application/json', 'idempotency-key': p.batch.id, authorization: 'Bearer b' },
      });
      expect(res.status).toBe(200);
      expect(seen.map((e) => e.change)).toEqual(['appeared', 'appeared', 'appeared', 'appeared']);
      off();
      expect(receiver.nodes().map((n) => n.node)).toEqual(['mounted']);
      expect(receiver.workers('active').map((w) => w.worker)).toEqual(['w1']);
      expect(await receiver.ready()).toBe(true);
    } finally {
      server.close();
      await receiver.close();
      await receiver.close();
    }
  });

  it('takes a repeated full ping as a duplicate, not as a part out of order, so the next delta still applies', async () => {
    const r = await receiver();
    const full = ping([worker('w1')], { seq: 1, mode: 'full' }, 'node-d', 'dd');
    expect((await post(r, full)).status).toBe(200);
    expect((await post(r, full)).status).toBe(200);
    const delta = ping([], { seq: 2, mode: 'delta', base: 1 }, 'node-d', 'dd');
    expect(await post(r, delta)).toEqual({ status: 200, body: { ok: true, delta: true } });
    expect(r.stats()).toMatchObject({ duplicates: 1, conflicts: 0, modes: { full: 1, delta: 1, v1: 0 } });
    // Another receiver never saw the full ping: it refuses the delta.
    const other = await receiver();
    const refused = await post(other, ping([], { seq: 3, mode: 'delta', base: 1 }, 'node-d', 'dd'));
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ resync: true });
  });
});
