import { describe, expect, it } from 'vitest';
import type { Ping, PingWorker } from '../../src/protocol/index.js';
import { applyPing, expireNode, type NodeRecord, type RecordEvent } from '../../src/receiver/ledger.js';

const at = (ms: number) => ({ wall: 1_700_000_000_000 + ms, mono: ms });

function w(worker: string, instance: string, state: PingWorker['state'] = 'active'): PingWorker {
  return { worker, instance, state, since: 0, first_seen: 0, last_seen: 0, beats: 1, seq: 1 };
}

let n = 0;
function ping(workers: PingWorker[], batch: Partial<Ping['batch']> = {}, daemon = 'd1'): Ping {
  n++;
  return {
    v: 1,
    node: 'n1',
    daemon: { instance: daemon, version: '1', started_at: 0 },
    batch: { id: `b${n}`, seq: n, part: 1, parts: 1, sent_at: 0, next_ping_within_ms: 1000, final: false, ...batch },
    workers,
  };
}

/** Applies pings in turn, as one store would; returns the record and the changes of the last one. */
function run(...steps: [Ping, number][]): { record: NodeRecord; events: RecordEvent[]; all: string[] } {
  let record: NodeRecord | undefined;
  let events: RecordEvent[] = [];
  const all: string[] = [];
  for (const [p, ms] of steps) {
    const r = applyPing(record, p, at(ms));
    if (r.duplicate) {
      events = [];
      continue;
    }
    ({ record, events } = r);
    all.push(...changes(events));
  }
  return { record: record!, events, all };
}

const changes = (events: readonly RecordEvent[]) =>
  events.map((e) => (e.type === 'worker' ? `${e.worker}:${e.change}${e.reason ? `(${e.reason})` : ''}` : `node:${e.change}`));

describe('receiver ledger', () => {
  it('expires a lease exactly when next_ping_within_ms has passed since the ping arrived', () => {
    const { record } = run([ping([w('a', 'i1')], { next_ping_within_ms: 1000 }), 0]);
    expect(expireNode(record, at(999))).toBeUndefined();
    const expired = expireNode(record, at(1000));
    expect(expired?.events).toEqual([
      { type: 'node', change: 'expired', id: `n1:expired:d1:${at(1000).wall}`, at: at(1000).wall, node: 'n1', daemon: 'd1', lease_ms: 1000, workers: 1 },
    ]);
    expect(expireNode(expired!.record, at(5000))).toBeUndefined();
  });

  it('applies a batch id once: a repeat is a duplicate and changes nothing', () => {
    const p = ping([w('a', 'i1')]);
    const first = applyPing(undefined, p, at(0));
    expect(first.duplicate).toBe(false);
    if (first.duplicate) return;
    expect(applyPing(first.record, p, at(1))).toEqual({ duplicate: true });
  });

  it('gives every event an id made of the node, the batch id and its position, so a republished event is recognised', () => {
    const p = ping([w('a', 'i1'), w('b', 'j1')]);
    const r = applyPing(undefined, p, at(0));
    expect(r.duplicate ? [] : r.events.map((e) => e.id)).toEqual([`n1:${p.batch.id}:0`, `n1:${p.batch.id}:1`, `n1:${p.batch.id}:2`]);
  });

  it('does not change the record it was given (a failed compare-and-set retries with it)', () => {
    const { record } = run([ping([w('a', 'i1')]), 0]);
    const before = structuredClone(record);
    applyPing(record, ping([w('a', 'i1', 'stopped'), w('b', 'j1')]), at(10));
    expect(record).toEqual(before);
  });

  it('keeps a node final across the later parts of its final ping, so it never expires', () => {
    const { record, all } = run([ping([], { final: true, part: 1, parts: 2, seq: 1 }), 0], [ping([], { final: true, part: 2, parts: 2, seq: 1 }), 1]);
    expect(all).toEqual(['node:appeared', 'node:final']);
    expect(expireNode(record, at(60_000))).toBeUndefined();
    expect(record.state).toBe('final');
  });

  it('reads a displaced stopped instance and its replacement in one ping as stopped, then restarted', () => {
    const { events } = run([ping([w('a', 'i1')]), 0], [ping([w('a', 'i1', 'stopped'), w('a', 'i2')]), 10]);
    expect(changes(events)).toEqual(['a:stopped', 'a:restarted']);
  });

  it('reports a terminal instance it never saw alive, once', () => {
    const { all } = run([ping([w('a', 'i1', 'lost')]), 0], [ping([w('a', 'i1', 'lost')]), 1]);
    expect(all).toEqual(['node:appeared', 'a:lost']);
  });

  it('forgets terminal instances after the retention period', () => {
    let rec = run([ping([w('a', 'i1', 'stopped'), w('b', 'j1')]), 0]).record;
    const again = applyPing(rec, ping([w('b', 'j1')]), at(500), { retentionMs: 1000 });
    rec = again.duplicate ? rec : again.record;
    expect(Object.keys(rec.workers).sort()).toEqual(['a', 'b']);
    const later = applyPing(rec, ping([w('b', 'j1')]), at(1500), { retentionMs: 1000 });
    expect(later.duplicate ? [] : Object.keys(later.record.workers)).toEqual(['b']);
  });

  it('remembers only the most recent batch ids', () => {
    let rec: NodeRecord | undefined;
    for (let i = 0; i < 5; i++) {
      const r = applyPing(rec, ping([]), at(i), { appliedIds: 3 });
      if (!r.duplicate) rec = r.record;
    }
    expect(rec?.applied).toHaveLength(3);
  });
});

describe('receiver ledger: a new daemon instance on a node (daemon_restarted)', () => {
  it('reports each live worker missing from the new instance first ping as lost, reason daemon_restarted, once', () => {
    const { events, record } = run(
      [ping([w('a', 'i1'), w('b', 'j1'), w('c', 'k1', 'draining'), w('d', 'l1', 'stopped')], {}, 'd1'), 0],
      [ping([w('a', 'i1'), w('b', 'j2')], {}, 'd2'), 100],
    );
    expect(changes(events)).toEqual(['node:restarted', 'b:restarted', 'c:lost(daemon_restarted)']);
    expect(record.workers['c']?.instances['k1']?.state).toBe('lost');
    expect(record.restart).toBeUndefined();
    const next = applyPing(record, ping([w('a', 'i1'), w('b', 'j2')], {}, 'd2'), at(200));
    expect(next.duplicate ? ['dup'] : changes(next.events)).toEqual([]);
  });

  it('waits for every part of the first ping before deciding who is missing', () => {
    const first = ping([w('a', 'i1'), w('b', 'j1'), w('c', 'k1')], {}, 'd1');
    const p1 = ping([w('a', 'i1')], { seq: 1, part: 1, parts: 2 }, 'd2');
    const p2 = ping([w('b', 'j1')], { seq: 1, part: 2, parts: 2 }, 'd2');
    const { all } = run([first, 0], [p1, 100], [p2, 110]);
    expect(all.slice(4)).toEqual(['node:restarted', 'c:lost(daemon_restarted)']);
  });

  it('starts over with a later ping when a part of the first one never came', () => {
    const first = ping([w('a', 'i1'), w('b', 'j1')], {}, 'd1');
    const p1 = ping([w('a', 'i1')], { seq: 1, part: 1, parts: 2 }, 'd2');
    const retry = ping([w('a', 'i1'), w('b', 'j1')], { seq: 2, part: 1, parts: 1 }, 'd2');
    const { all } = run([first, 0], [p1, 100], [retry, 200]);
    expect(all.slice(3)).toEqual(['node:restarted']);
  });

  it('does nothing special when the same daemon instance pings again', () => {
    const { all } = run([ping([w('a', 'i1'), w('b', 'j1')]), 0], [ping([w('a', 'i1')]), 100]);
    expect(all).toEqual(['node:appeared', 'a:appeared', 'b:appeared']);
  });
});
