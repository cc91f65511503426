import { describe, expect, it } from 'vitest';
import type { Ping, PingWorker } from '../../src/protocol/index.js';
import type { RecordEvent } from '../../src/receiver/ledger.js';
import { createMetrics } from '../../src/receiver/metrics.js';
import type { NodeRecord } from '../../src/receiver/record.js';
import { memoryStore } from '../../src/receiver/store/memory.js';
import { StoreUnavailableError, type ReceiverStore } from '../../src/receiver/store/types.js';
import { Writer } from '../../src/receiver/writer.js';

const at = (ms: number) => ({ wall: 1_700_000_000_000 + ms, mono: ms });

/** The memory store dressed as a shared one: publishes can be made to fail, and a swap can be beaten by another writer. */
function sharedStore() {
  const inner = memoryStore();
  const published: RecordEvent[] = [];
  const state = { publishFails: false, beatNextSwap: undefined as ((r: NodeRecord) => NodeRecord) | undefined };
  const store: ReceiverStore = {
    ...inner,
    kind: 'jetstream',
    async swap(node, record, revision) {
      const other = state.beatNextSwap;
      if (other !== undefined) {
        state.beatNextSwap = undefined;
        const cur = await inner.read(node);
        await inner.swap(node, other(cur!.record), cur!.revision);
      }
      return inner.swap(node, record, revision);
    },
    publish(events) {
      if (state.publishFails) return Promise.reject(new StoreUnavailableError('no stream'));
      for (const e of events) if (!published.some((p) => p.id === e.id)) published.push(e);
      return Promise.resolve();
    },
  };
  return { store, published, state };
}

function writer(store: ReceiverStore, emitted: RecordEvent[] = []) {
  return new Writer({
    store, metrics: createMetrics(() => store.all()), ledger: {}, maxAttempts: 4, outboxGraceMs: 1000, forgetAfterMs: 10_000,
    emit: (e) => emitted.push(...e), log: { warn: () => undefined },
  });
}

const w = (worker: string, state: PingWorker['state'] = 'active'): PingWorker =>
  ({ worker, instance: `${worker}-1`, state, since: 0, first_seen: 0, last_seen: 0, beats: 1, seq: 1 });
let n = 0;
const ping = (workers: PingWorker[], lease = 1000): Ping => {
  n++;
  return {
    v: 1, node: 'n1', daemon: { instance: 'd1', version: '1', started_at: 0 },
    batch: { id: `b${n}`, seq: n, part: 1, parts: 1, sent_at: 0, next_ping_within_ms: lease, final: false }, workers,
  };
};
const names = (events: readonly RecordEvent[]) => events.map((e) => (e.type === 'worker' ? `${e.worker}:${e.change}` : `node:${e.change}`));

describe('receiver writer', () => {
  it('keeps events whose publication failed in the node record, and the next writer publishes them first', async () => {
    const { store, published, state } = sharedStore();
    const wr = writer(store);
    state.publishFails = true;
    await wr.apply(ping([w('a')]), at(0));
    expect(published).toEqual([]);
    expect(names(store.cached('n1')!.record.outbox ?? [])).toEqual(['node:appeared', 'a:appeared']);
    state.publishFails = false;
    await wr.apply(ping([w('a', 'stopped')]), at(10));
    expect(names(published)).toEqual(['node:appeared', 'a:appeared', 'a:stopped']);
    expect(store.cached('n1')!.record.outbox).toBeUndefined();
  });

  it('publishes an outbox left behind before it expires the node, so no event is dropped', async () => {
    const { store, published, state } = sharedStore();
    const wr = writer(store);
    state.publishFails = true;
    await wr.apply(ping([w('a')], 100), at(0));
    state.publishFails = false;
    await wr.sweep(at(200));
    expect(names(published)).toEqual(['node:appeared', 'a:appeared', 'node:expired']);
  });

  it('publishes a stale outbox on the sweep when no one writes the node again', async () => {
    const { store, published, state } = sharedStore();
    const wr = writer(store);
    state.publishFails = true;
    await wr.apply(ping([w('a')], 60_000), at(0));
    state.publishFails = false;
    await wr.sweep(at(500));
    expect(published).toEqual([]);
    await wr.sweep(at(1500));
    expect(names(published)).toEqual(['node:appeared', 'a:appeared']);
  });

  it('recomputes from the newer record when another replica wrote first, losing neither change', async () => {
    const { store, state } = sharedStore();
    const emitted: RecordEvent[] = [];
    const wr = writer(store, emitted);
    await wr.apply(ping([w('a')]), at(0));
    // Another replica adds worker b between our read and our write.
    state.beatNextSwap = (r) => ({ ...r, workers: { ...r.workers, b: { current: 'b-1', instances: { 'b-1': { state: 'active', seen: 5 } } } } });
    await wr.apply(ping([w('a'), w('c')]), at(10));
    expect(Object.keys(store.cached('n1')!.record.workers).sort()).toEqual(['a', 'b', 'c']);
    expect(names(emitted)).toEqual(['node:appeared', 'a:appeared', 'c:appeared']);
  });

  it('applies a ping once however often it arrives, also concurrently', async () => {
    const { store } = sharedStore();
    const wr = writer(store);
    const p = ping([w('a')]);
    const outcomes = await Promise.all([wr.apply(p, at(0)), wr.apply(p, at(0)), wr.apply(p, at(1))]);
    expect(outcomes.map((o) => o.outcome).sort()).toEqual(['applied', 'duplicate', 'duplicate']);
  });

  it('forgets a node expired or final for forgetAfterMs since its last ping, and not an alive one', async () => {
    const { store } = sharedStore();
    const emitted: RecordEvent[] = [];
    const wr = writer(store, emitted);
    await wr.apply(ping([w('a')], 100), at(0));
    await wr.sweep(at(200));
    expect(store.cached('n1')?.record.state).toBe('expired');
    await wr.sweep(at(9_999));
    expect(store.cached('n1')).toBeDefined();
    await wr.sweep(at(10_000));
    expect(store.cached('n1')).toBeUndefined();
    // It comes back as a new node.
    await wr.apply(ping([w('a')], 60_000), at(20_000));
    expect(names(emitted).slice(-2)).toEqual(['node:appeared', 'a:appeared']);
    // Alive (its lease runs to 80 s) long after forgetAfterMs: kept.
    await wr.sweep(at(70_000));
    expect(store.cached('n1')?.record.state).toBe('alive');
  });
});
