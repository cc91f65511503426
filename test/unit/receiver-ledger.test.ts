import { describe, expect, it } from 'vitest';
import type { Ping, PingWorker } from '../../src/protocol/index.js';
import { Ledger } from '../../src/receiver/ledger.js';

const at = (mono: number) => ({ wall: 1_700_000_000_000 + mono, mono });

function w(worker: string, instance: string, state: PingWorker['state'] = 'active'): PingWorker {
  return { worker, instance, state, since: 0, first_seen: 0, last_seen: 0, beats: 1, seq: 1 };
}

function ping(workers: PingWorker[], batch: Partial<Ping['batch']> = {}): Ping {
  return {
    v: 1,
    node: 'n1',
    daemon: { instance: 'd1', version: '1', started_at: 0 },
    batch: { id: 'x', seq: 1, part: 1, parts: 1, sent_at: 0, next_ping_within_ms: 1000, final: false, ...batch },
    workers,
  };
}

const changes = (events: ReturnType<Ledger['apply']>) =>
  events.map((e) => (e.type === 'worker' ? `${e.worker}:${e.change}` : `node:${e.change}`));

describe('receiver ledger', () => {
  it('expires a lease exactly when next_ping_within_ms has passed since the ping arrived', () => {
    const l = new Ledger();
    l.apply(ping([w('a', 'i1')], { next_ping_within_ms: 1000 }), at(0));
    expect(l.expire(at(999))).toEqual([]);
    expect(l.nextDeadline()).toBe(1000);
    expect(l.expire(at(1000))).toEqual([
      { type: 'node', change: 'expired', at: at(1000).wall, node: 'n1', daemon: 'd1', lease_ms: 1000, workers: 1 },
    ]);
    expect(l.expire(at(5000))).toEqual([]);
    expect(l.nextDeadline()).toBe(Infinity);
  });

  it('keeps a node final across the later parts of its final ping, so it never expires', () => {
    const l = new Ledger();
    expect(changes(l.apply(ping([], { final: true, part: 1, parts: 2 }), at(0)))).toEqual(['node:appeared', 'node:final']);
    expect(changes(l.apply(ping([], { final: true, part: 2, parts: 2 }), at(1)))).toEqual([]);
    expect(l.expire(at(60_000))).toEqual([]);
    expect(l.nodeList()[0]?.state).toBe('final');
  });

  it('reads a displaced stopped instance and its replacement in one ping as stopped, then restarted', () => {
    const l = new Ledger();
    l.apply(ping([w('a', 'i1')]), at(0));
    const events = l.apply(ping([w('a', 'i1', 'stopped'), w('a', 'i2')]), at(10));
    expect(changes(events)).toEqual(['a:stopped', 'a:restarted']);
    expect(l.countByState()).toEqual({ active: 1, draining: 0, stopped: 0, lost: 0 });
  });

  it('reports a terminal instance it never saw alive, once', () => {
    const l = new Ledger();
    expect(changes(l.apply(ping([w('a', 'i1', 'lost')]), at(0)))).toEqual(['node:appeared', 'a:lost']);
    expect(changes(l.apply(ping([w('a', 'i1', 'lost')]), at(1)))).toEqual([]);
  });

  it('forgets terminal instances after the retention period', () => {
    const l = new Ledger({ retentionMs: 1000 });
    l.apply(ping([w('a', 'i1', 'stopped'), w('b', 'j1')]), at(0));
    l.expire(at(500));
    expect(l.workerList().map((x) => x.worker).sort()).toEqual(['a', 'b']);
    l.apply(ping([w('b', 'j1')]), at(1500));
    l.expire(at(1500));
    expect(l.workerList().map((x) => x.worker)).toEqual(['b']);
  });
});
