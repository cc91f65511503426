/** The delta builder and the roster (PROTOCOL.md 3.1), on an injected clock. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildPing } from '../../src/core/batch.js';
import { DeltaTracker, sameMeta, type DeltaAnswer, type PingPlan } from '../../src/core/delta.js';
import { Registry } from '../../src/core/registry.js';
import { Roster, rosterHash, rosterOf } from '../../src/core/roster.js';
import type { Instant } from '../../src/core/time.js';
import { Ping, type Beat } from '../../src/protocol/schemas.js';

const OPTS = { maxWorkers: 100_000, lostAfterMinMs: 3000, tombstoneRetentionMs: 60_000, maxTombstones: 1000, defaultDrainTimeoutMs: 5000 };
const INFO = { node: 'n', instance: 'd', version: '1', startedAt: 0 };
const FULL_EVERY = 300_000;

/** A registry, a tracker and a clock; `ping()` plans one ping and answers it. */
function harness() {
  const registry = new Registry(OPTS);
  const tracker = new DeltaTracker({ fullEveryMs: FULL_EVERY });
  registry.watch(tracker);
  let mono = 0;
  let seq = 0;
  const seqs = new Map<string, number>();
  const now = (): Instant => ({ wall: 1_700_000_000_000 + mono, mono });
  const beat = (worker: string, extra: Partial<Beat> = {}, instance = 'i1') => {
    const k = `${worker}/${instance}`;
    const s = (seqs.get(k) ?? 0) + 1;
    seqs.set(k, s);
    return registry.applyBeat({ v: 1, worker, instance, seq: s, interval_ms: 1000, ...extra }, now());
  };
  /** Plans ping `seq` and answers every part with `answer` (2xx), or fails from part `failFrom` on. */
  const ping = (answer: DeltaAnswer | 'fail' | '409' = { delta: true }, o: { final?: boolean; partSize?: number; failFrom?: number } = {}) => {
    const s = ++seq;
    const plan = tracker.plan(registry, s, mono, o.final ?? false);
    const parts = buildPing(INFO, {
      seq: s, workers: plan.workers, sent: plan.sent, partSize: o.partSize ?? 1000, sentAt: now().wall,
      nextPingWithinMs: 1000, final: o.final ?? false, delta: { mode: plan.mode, base: plan.base, roster: plan.roster },
    });
    let complete = true;
    for (const [i, part] of parts.entries()) {
      if (answer === 'fail' || (o.failFrom !== undefined && i + 1 >= o.failFrom)) {
        complete = false;
        break;
      }
      if (answer === '409') {
        tracker.conflict();
        complete = false;
        break;
      }
      registry.acknowledge(part.sent, now());
      tracker.accepted(part.sent, answer);
    }
    tracker.finish(complete);
    return { plan, parts, seq: s };
  };
  const names = (plan: PingPlan) => plan.workers.map((w) => w.worker);
  return { registry, tracker, beat, ping, names, advance: (ms: number) => void (mono += ms), now };
}

function steady(n: number) {
  const h = harness();
  for (let i = 0; i < n; i++) h.beat(`w${i}`, { status: 'idle' });
  h.ping(); // full: the first ping of a daemon instance
  return h;
}

describe('roster', () => {
  it('hashes worker\\ninstance\\nstate: the first 8 bytes of SHA-256, as 16 lowercase hex digits', () => {
    const digest = createHash('sha256').update('w1\ni1\nactive').digest('hex').slice(0, 16);
    const h = rosterHash('w1', 'i1', 'active');
    expect(h.hi.toString(16).padStart(8, '0') + h.lo.toString(16).padStart(8, '0')).toBe(digest);
    expect(rosterOf([{ worker: 'w1', instance: 'i1', state: 'active' }])).toEqual({ count: 1, xor: digest });
  });

  it('counts and XORs active and draining entries only; empty is 16 zeros', () => {
    expect(rosterOf([])).toEqual({ count: 0, xor: '0000000000000000' });
    const r = rosterOf([
      { worker: 'a', instance: '1', state: 'active' },
      { worker: 'b', instance: '1', state: 'draining' },
      { worker: 'c', instance: '1', state: 'lost' },
      { worker: 'd', instance: '1', state: 'stopped' },
    ]);
    expect(r).toEqual(rosterOf([{ worker: 'b', instance: '1', state: 'draining' }, { worker: 'a', instance: '1', state: 'active' }]));
    expect(r.count).toBe(2);
  });

  it('kept incrementally gives what a fresh pass gives, whatever the order of changes', () => {
    const r = new Roster();
    r.set('a', '1', 'active');
    r.set('b', '1', 'active');
    r.set('a', '1', 'draining');
    r.set('c', '1', 'active');
    r.set('b', '1', 'lost');
    r.set('c', '1', undefined);
    r.set('a', '2', 'active');
    expect(r.value()).toEqual(rosterOf([{ worker: 'a', instance: '1', state: 'draining' }, { worker: 'a', instance: '2', state: 'active' }]));
  });
});

describe('delta builder: negotiation', () => {
  it('sends full pings until a 2xx says "delta": true, then a delta whose base is the last accepted ping', () => {
    const h = harness();
    h.beat('w1');
    expect(h.ping({}).plan.mode).toBe('full'); // no offer: stays full
    const second = h.ping({ delta: true });
    expect(second.plan.mode).toBe('full');
    const third = h.ping();
    expect(third.plan).toMatchObject({ mode: 'delta', base: second.seq, workers: [] });
    expect(third.parts[0]!.body.batch).toMatchObject({ mode: 'delta', base: 2 });
    expect(Ping.safeParse(third.parts[0]!.body).success).toBe(true);
  });

  it('goes back to full when a 2xx answer stops offering deltas ("delta": false or absent)', () => {
    const h = steady(3);
    expect(h.ping({ delta: false }).plan.mode).toBe('delta');
    expect(h.ping().plan.mode).toBe('full');
  });

  it('makes the next ping full after "resync": true, and does not count the resynced ping as a base', () => {
    const h = steady(3);
    const d = h.ping({ delta: true, resync: true });
    expect(d.plan.mode).toBe('delta');
    const f = h.ping();
    expect(f.plan.mode).toBe('full');
    expect(f.plan.workers).toHaveLength(3);
    expect(h.ping().plan).toMatchObject({ mode: 'delta', base: f.seq });
  });

  it('makes the next ping full after a 409, and lists the unaccepted change in it', () => {
    const h = steady(3);
    h.beat('w1', { status: 'busy' });
    expect(h.ping('409').plan.workers.map((w) => w.worker)).toEqual(['w1']);
    const f = h.ping();
    expect(f.plan.mode).toBe('full');
    expect(f.plan.workers.find((w) => w.worker === 'w1')?.status).toBe('busy');
    expect(h.ping().plan).toMatchObject({ mode: 'delta', workers: [] });
  });

  it('keeps the base of the last completely accepted ping when a ping fails', () => {
    const h = steady(3);
    const ok = h.ping();
    h.beat('w2', { status: 'busy' });
    expect(h.ping('fail').plan.base).toBe(ok.seq);
    const retry = h.ping();
    expect(retry.plan).toMatchObject({ mode: 'delta', base: ok.seq });
    expect(h.names(retry.plan)).toEqual(['w2']);
  });

  it('sends a full ping at least every full_every_ms and as the final ping', () => {
    const h = steady(2);
    h.advance(FULL_EVERY - 1);
    expect(h.ping().plan.mode).toBe('delta');
    h.advance(1);
    expect(h.ping().plan.mode).toBe('full');
    expect(h.ping().plan.mode).toBe('delta');
    expect(h.ping({ delta: true }, { final: true }).plan.mode).toBe('full');
  });

  it('owes a full ping again when a full ping was not completely accepted', () => {
    const h = steady(4);
    h.advance(FULL_EVERY);
    expect(h.ping({ delta: true }, { partSize: 2, failFrom: 2 }).plan.mode).toBe('full');
    expect(h.ping().plan.mode).toBe('full');
    expect(h.ping().plan.mode).toBe('delta');
  });
});

describe('delta builder: what a delta lists', () => {
  it('lists nothing for steady workers: an empty delta whatever their number, with the same roster', () => {
    const h = steady(1000);
    const full = h.ping({ delta: true });
    for (let i = 0; i < 1000; i++) h.beat(`w${i}`, { status: 'idle', inflight: i % 3, load: (i % 10) / 10 });
    const d = h.ping();
    expect(d.plan.mode).toBe('delta');
    expect(d.plan.workers).toEqual([]);
    expect(d.plan.roster).toEqual(full.plan.roster);
    expect(d.plan.roster.count).toBe(1000);
    expect(Buffer.byteLength(JSON.stringify(d.parts[0]!.body))).toBeLessThan(400);
  });

  it('lists an entry whose status, meta or interval_ms changed, alone, with its accumulated beats', () => {
    const h = steady(5);
    h.beat('w1', { status: 'busy' });
    h.beat('w1', { status: 'busy' });
    h.beat('w2', { meta: { zone: 'a' } });
    h.beat('w3', { interval_ms: 2000 });
    h.beat('w4', { inflight: 7, load: 0.9 }); // gauges alone are no change
    const d = h.ping();
    expect(h.names(d.plan)).toEqual(['w1', 'w2', 'w3']);
    expect(d.plan.workers[0]).toMatchObject({ status: 'busy', beats: 2, beats_total: 3 });
    // Accepted: listed no more; the unlisted w4 keeps counting.
    expect(h.ping().plan.workers).toEqual([]);
    h.beat('w4', { status: 'busy' });
    const w4 = h.ping().plan.workers[0];
    expect(w4).toMatchObject({ worker: 'w4', beats: 2, beats_total: 3, status: 'busy' });
    expect(w4?.inflight).toBeUndefined(); // the latest beat's gauges travel with it
  });

  it('lists a worker that appears, a Leave, and a loss, each alone', () => {
    const h = steady(3);
    h.beat('new');
    expect(h.names(h.ping().plan)).toEqual(['new']);
    h.registry.applyLeave({ v: 1, worker: 'w0', instance: 'i1', seq: 9, phase: 'draining' }, h.now());
    const drain = h.ping();
    expect(drain.plan.workers).toMatchObject([{ worker: 'w0', state: 'draining' }]);
    expect(drain.plan.roster).toEqual(rosterOf(h.registry.snapshot()));
    h.advance(3000);
    for (const w of ['w0', 'w2', 'new']) h.beat(w);
    h.registry.detectLoss(h.now());
    const lost = h.ping();
    expect(lost.plan.workers).toMatchObject([{ worker: 'w1', state: 'lost', reason: 'heartbeat_timeout' }]);
    expect(lost.plan.roster.count).toBe(3);
  });

  it('repeats a terminal state in every delta until one carrying it is accepted', () => {
    const h = steady(2);
    h.registry.applyLeave({ v: 1, worker: 'w0', instance: 'i1', seq: 9, phase: 'stopped' }, h.now());
    expect(h.names(h.ping('fail').plan)).toEqual(['w0']);
    expect(h.names(h.ping('fail').plan)).toEqual(['w0']);
    expect(h.ping().plan.workers).toMatchObject([{ worker: 'w0', state: 'stopped' }]);
    expect(h.ping().plan.workers).toEqual([]);
  });

  it('lists a change again when it changed while the ping carrying its older value was in flight', () => {
    const h = steady(2);
    h.beat('w0', { status: 'busy' });
    const plan = h.tracker.plan(h.registry, 100, 0, false);
    h.beat('w0', { status: 'idle' }); // changes again before the answer
    h.registry.acknowledge(plan.sent, h.now());
    h.tracker.accepted(plan.sent, { delta: true });
    h.tracker.finish(true);
    expect(h.ping().plan.workers).toMatchObject([{ worker: 'w0', status: 'idle' }]);
  });

  it('lists a restart as the new instance and the old one lost (restarted)', () => {
    const h = steady(2);
    h.beat('w0', {}, 'i2');
    const d = h.ping();
    expect(d.plan.workers.map((w) => [w.instance, w.state, w.reason])).toEqual(
      expect.arrayContaining([['i1', 'lost', 'restarted'], ['i2', 'active', undefined]]),
    );
    expect(d.plan.roster).toEqual(rosterOf(h.registry.snapshot()));
  });

  it('carries the same mode, base and whole-ping roster in every part of a split delta; base moves only when all parts are accepted', () => {
    const h = steady(6);
    const base = h.ping().seq;
    for (let i = 0; i < 5; i++) h.beat(`w${i}`, { status: 'busy' });
    const split = h.ping({ delta: true }, { partSize: 2, failFrom: 3 });
    expect(split.parts.map((p) => [p.body.batch.part, p.body.batch.mode, p.body.batch.base, p.body.roster])).toEqual(
      [1, 2, 3].map((part) => [part, 'delta', base, split.plan.roster]),
    );
    // Parts 1 and 2 were accepted: only part 3's entry is listed again, on the same base.
    const next = h.ping();
    expect(next.plan).toMatchObject({ mode: 'delta', base });
    expect(h.names(next.plan)).toEqual(['w4']);
  });
});

describe('sameMeta', () => {
  it('compares flat meta key by key', () => {
    expect(sameMeta(undefined, undefined)).toBe(true);
    expect(sameMeta({ a: 1 }, undefined)).toBe(false);
    expect(sameMeta({ a: 1, b: 'x' }, { b: 'x', a: 1 })).toBe(true);
    expect(sameMeta({ a: 1 }, { a: '1' })).toBe(false);
    expect(sameMeta({ a: 1 }, { a: 1, b: true })).toBe(false);
  });
});
