/**
 * The registry against docs/PROTOCOL.md sections 2.1-2.5, 2.7 and 2.8, with a fake
 * clock: every Instant is built by `at(ms)`, so durations are exact.
 */
import { describe, expect, it } from 'vitest';
import { Registry, type RegistryOptions, type SentRecord } from '../../src/core/registry.js';
import type { Instant } from '../../src/core/time.js';
import type { Beat, Leave, PingWorker } from '../../src/protocol/schemas.js';

const WALL0 = 1_763_719_000_000;
/** The instant `ms` milliseconds after the test's origin. */
const at = (ms: number): Instant => ({ wall: WALL0 + ms, mono: ms });

const OPTS: RegistryOptions = {
  maxWorkers: 100,
  lostAfterMinMs: 3000,
  tombstoneRetentionMs: 600_000,
  maxTombstones: 1000,
  defaultDrainTimeoutMs: 30_000,
};
const registry = (o: Partial<RegistryOptions> = {}) => new Registry({ ...OPTS, ...o });

function beat(worker: string, instance: string, seq: number, extra: Partial<Beat> = {}): Beat {
  return { v: 1, worker, instance, seq, interval_ms: 1000, ...extra };
}

function leave(worker: string, instance: string, seq: number, phase: Leave['phase'], extra: Partial<Leave> = {}): Leave {
  return { v: 1, worker, instance, seq, phase, ...extra };
}

/** A ping the platform accepts: what collect() returned, acknowledged at `t`. */
function ping(r: Registry, t: Instant): PingWorker[] {
  const { workers, sent } = r.collect();
  r.acknowledge(sent, t);
  return workers;
}

/** The parts of a collected ping that tests compare most often. */
const brief = (p: PingWorker) => ({ worker: p.worker, instance: p.instance, state: p.state, beats: p.beats, seq: p.seq, reason: p.reason });
const collected = (r: Registry) => r.collect().workers.map(brief);

describe('Registry: coalescing (2.1)', () => {
  it('merges the beats of one worker between two pings into one entry where the latest fields win', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1, { status: 'busy', inflight: 3, load: 0.5, meta: { zone: 'x' } }), at(0));
    r.applyBeat(beat('w1', 'a', 2, { status: 'idle', inflight: 1, meta: { zone: 'y', n: 2 } }), at(100));
    r.applyBeat(beat('w2', 'b', 7), at(150));
    r.applyBeat(beat('w1', 'a', 5, { interval_ms: 2000, status: 'busy', inflight: 0, load: 0.25 }), at(200));

    expect(r.collect().workers).toEqual([
      {
        worker: 'w1', instance: 'a', state: 'active', since: WALL0, first_seen: WALL0, last_seen: WALL0 + 200,
        beats: 3, beats_total: 3, seq: 5, interval_ms: 2000, status: 'busy', inflight: 0, load: 0.25,
      },
      {
        worker: 'w2', instance: 'b', state: 'active', since: WALL0 + 150, first_seen: WALL0 + 150, last_seen: WALL0 + 150,
        beats: 1, beats_total: 1, seq: 7, interval_ms: 1000, status: 'idle',
      },
    ]);
  });

  it('counts in beats only the beats accepted since the last accepted ping', () => {
    const r = registry();
    for (let s = 1; s <= 4; s++) r.applyBeat(beat('w1', 'a', s), at(s));
    expect(ping(r, at(10)).map(brief)).toEqual([{ worker: 'w1', instance: 'a', state: 'active', beats: 4, seq: 4, reason: undefined }]);
    r.applyBeat(beat('w1', 'a', 5), at(20));
    r.applyBeat(beat('w1', 'a', 6), at(30));
    expect(ping(r, at(40)).map((p) => p.beats)).toEqual([2]);
    expect(ping(r, at(50)).map((p) => p.beats)).toEqual([0]);
  });

  it('keeps the beats that arrive while a ping is in flight for the next ping', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.applyBeat(beat('w1', 'a', 2), at(1));
    const inFlight = r.collect();
    expect(inFlight.workers.map((p) => p.beats)).toEqual([2]);
    r.applyBeat(beat('w1', 'a', 3), at(2));
    r.applyBeat(beat('w1', 'a', 4), at(3));
    r.applyBeat(beat('w1', 'a', 5), at(4));
    r.acknowledge(inFlight.sent, at(5));
    expect(collected(r)).toEqual([{ worker: 'w1', instance: 'a', state: 'active', beats: 3, seq: 5, reason: undefined }]);
  });

  it('leaves the count of a failed ping to the next one', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.applyBeat(beat('w1', 'a', 2), at(1));
    r.collect(); // the ping fails: never acknowledged
    r.applyBeat(beat('w1', 'a', 3), at(2));
    expect(ping(r, at(3)).map((p) => p.beats)).toEqual([3]);
    expect(ping(r, at(4)).map((p) => p.beats)).toEqual([0]);
  });

  it('carries the unsent beats of a worker that goes lost in its lost entry', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1), at(0));
    ping(r, at(1));
    r.applyBeat(beat('w1', 'a', 2), at(100));
    r.applyBeat(beat('w1', 'a', 3), at(200));
    expect(r.detectLoss(at(3200))).toEqual([{ worker: 'w1', instance: 'a', reason: 'heartbeat_timeout' }]);
    expect(collected(r)).toEqual([{ worker: 'w1', instance: 'a', state: 'lost', beats: 2, seq: 3, reason: 'heartbeat_timeout' }]);
  });

  it('sums beats over accepted pings to every accepted beat exactly once across a restart and a leave', () => {
    const r = registry();
    let accepted = 0;
    let delivered = 0;
    const send = (ok: boolean, t: Instant, between?: () => void) => {
      const { workers, sent } = r.collect();
      between?.();
      if (ok) {
        r.acknowledge(sent, t);
        delivered += workers.reduce((n, p) => n + p.beats, 0);
      }
    };
    const b = (x: Beat, t: Instant) => {
      if (r.applyBeat(x, t).ok) accepted++;
    };
    b(beat('w1', 'a', 1), at(0));
    b(beat('w1', 'a', 2), at(1));
    send(false, at(2));
    send(true, at(3), () => b(beat('w1', 'a', 3), at(3)));
    b(beat('w1', 'b', 1), at(4)); // restart: a is lost (restarted) and still owes a beat
    b(beat('w1', 'a', 4), at(5)); // suppressed
    send(true, at(6), () => r.applyLeave(leave('w1', 'b', 2, 'stopped'), at(6)));
    send(true, at(7));
    expect(accepted).toBe(4);
    expect(delivered).toBe(4);
    expect(r.collect().workers).toEqual([]);
  });
});

describe('Registry: order (2.2)', () => {
  it('drops a beat whose seq is not greater than the last accepted seq as stale and keeps the entry as it was', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 5, { status: 'busy' }), at(0));
    expect(r.applyBeat(beat('w1', 'a', 5, { status: 'idle' }), at(1))).toEqual({
      ok: false, reason: 'stale', error: 'seq 5 is not after 5 for instance a',
    });
    expect(r.applyBeat(beat('w1', 'a', 2), at(2))).toMatchObject({ ok: false, reason: 'stale' });
    expect(r.collect().workers).toEqual([
      {
        worker: 'w1', instance: 'a', state: 'active', since: WALL0, first_seen: WALL0, last_seen: WALL0,
        beats: 1, beats_total: 1, seq: 5, interval_ms: 1000, status: 'busy',
      },
    ]);
  });

  it('does not let a stale beat postpone loss detection', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 5), at(0));
    r.applyBeat(beat('w1', 'a', 4), at(2999));
    expect(r.detectLoss(at(3000))).toEqual([{ worker: 'w1', instance: 'a', reason: 'heartbeat_timeout' }]);
  });
});

describe('Registry: suppression and restarts (2.3)', () => {
  it('treats a beat from a new instance as a restart and reports the old instance lost with reason restarted', () => {
    const r = registry();
    expect(r.applyBeat(beat('w1', 'a', 10), at(0))).toEqual({ ok: true, transition: 'appeared' });
    ping(r, at(1));
    r.applyBeat(beat('w1', 'a', 11), at(2));
    expect(r.applyBeat(beat('w1', 'b', 0), at(3))).toEqual({ ok: true, transition: 'restarted', replaced: 'a' });
    expect(collected(r)).toEqual([
      { worker: 'w1', instance: 'a', state: 'lost', beats: 1, seq: 11, reason: 'restarted' },
      { worker: 'w1', instance: 'b', state: 'active', beats: 1, seq: 0, reason: undefined },
    ]);
    expect(r.applyBeat(beat('w1', 'a', 12), at(4))).toEqual({
      ok: false, reason: 'suppressed', error: 'instance a of w1 has been replaced by a newer instance', conflict: 'b',
    });
    ping(r, at(5));
    expect(collected(r)).toEqual([{ worker: 'w1', instance: 'b', state: 'active', beats: 0, seq: 0, reason: undefined }]);
  });

  it('keeps a draining instance draining beside the new instance that replaced it', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.applyLeave(leave('w1', 'a', 2, 'draining', { drain_timeout_ms: 10_000 }), at(100));
    ping(r, at(200));
    expect(r.applyBeat(beat('w1', 'b', 1), at(300))).toEqual({ ok: true, transition: 'restarted' });
    expect(collected(r)).toEqual([
      { worker: 'w1', instance: 'a', state: 'draining', beats: 0, seq: 2, reason: undefined },
      { worker: 'w1', instance: 'b', state: 'active', beats: 1, seq: 1, reason: undefined },
    ]);
    ping(r, at(400));
    expect(r.applyLeave(leave('w1', 'a', 3, 'stopped', { reason: 'SIGTERM' }), at(500))).toEqual({
      ok: true, state: 'stopped', transition: 'stopped',
    });
    expect(collected(r)).toEqual([
      { worker: 'w1', instance: 'a', state: 'stopped', beats: 0, seq: 3, reason: 'SIGTERM' },
      { worker: 'w1', instance: 'b', state: 'active', beats: 0, seq: 1, reason: undefined },
    ]);
    ping(r, at(600));
    expect(collected(r)).toEqual([{ worker: 'w1', instance: 'b', state: 'active', beats: 0, seq: 1, reason: undefined }]);
  });

  it('times out a replaced draining instance as drain_timeout', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.applyLeave(leave('w1', 'a', 2, 'draining', { drain_timeout_ms: 5000 }), at(0));
    r.applyBeat(beat('w1', 'b', 1, { interval_ms: 10_000 }), at(10));
    expect(r.detectLoss(at(5999))).toEqual([]);
    expect(r.detectLoss(at(6000))).toEqual([{ worker: 'w1', instance: 'a', reason: 'drain_timeout' }]);
  });

  it('moves a worker through draining then stopped on its Leave messages', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1, { status: 'busy', inflight: 2 }), at(0));
    expect(r.applyLeave(leave('w1', 'a', 2, 'draining', { reason: 'deploy' }), at(10))).toEqual({
      ok: true, state: 'draining', transition: 'draining',
    });
    expect(r.collect().workers).toEqual([
      {
        worker: 'w1', instance: 'a', state: 'draining', since: WALL0 + 10, reason: 'deploy', first_seen: WALL0,
        last_seen: WALL0, beats: 1, beats_total: 1, seq: 2, interval_ms: 1000, status: 'busy', inflight: 2,
      },
    ]);
    expect(r.applyLeave(leave('w1', 'a', 3, 'stopped'), at(20))).toEqual({ ok: true, state: 'stopped', transition: 'stopped' });
    expect(collected(r)).toEqual([{ worker: 'w1', instance: 'a', state: 'stopped', beats: 1, seq: 3, reason: 'deploy' }]);
  });

  it('answers a repeated Leave with the same reply and no new transition, before and after the platform accepted it', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1), at(0));
    expect(r.applyLeave(leave('w1', 'a', 2, 'draining'), at(1))).toEqual({ ok: true, state: 'draining', transition: 'draining' });
    expect(r.applyLeave(leave('w1', 'a', 2, 'draining'), at(2))).toEqual({ ok: true, state: 'draining' });
    expect(r.applyLeave(leave('w1', 'a', 3, 'stopped'), at(3))).toEqual({ ok: true, state: 'stopped', transition: 'stopped' });
    expect(r.applyLeave(leave('w1', 'a', 3, 'stopped'), at(4))).toEqual({ ok: true, state: 'stopped' });
    ping(r, at(5));
    expect(r.collect().workers).toEqual([]);
    expect(r.applyLeave(leave('w1', 'a', 3, 'stopped'), at(6))).toEqual({ ok: true, state: 'stopped' });
    expect(r.applyLeave(leave('w1', 'a', 2, 'draining'), at(7))).toEqual({ ok: true, state: 'stopped' });
    expect(r.collect().workers).toEqual([]);
  });

  it('suppresses every beat of an instance after its Leave, late ones included, and never revives it', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.applyLeave(leave('w1', 'a', 5, 'draining'), at(10));
    for (const [seq, t] of [[6, 20], [100, 30], [3, 40]] as const) {
      expect(r.applyBeat(beat('w1', 'a', seq), at(t))).toEqual({
        ok: false, reason: 'suppressed', error: 'instance a of w1 has announced draining',
      });
    }
    r.applyLeave(leave('w1', 'a', 6, 'stopped'), at(50));
    expect(r.applyBeat(beat('w1', 'a', 7), at(60))).toMatchObject({ ok: false, reason: 'suppressed' });
    ping(r, at(70));
    expect(r.applyBeat(beat('w1', 'a', 8), at(80))).toMatchObject({ ok: false, reason: 'suppressed' });
    expect(r.collect().workers).toEqual([]);
    expect(r.size).toBe(0);
  });

  it('never revives a draining instance that timed out', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.applyLeave(leave('w1', 'a', 2, 'draining', { drain_timeout_ms: 1000 }), at(0));
    r.detectLoss(at(2000));
    expect(r.applyBeat(beat('w1', 'a', 3), at(2001))).toMatchObject({ ok: false, reason: 'suppressed' });
    expect(collected(r)).toEqual([{ worker: 'w1', instance: 'a', state: 'lost', beats: 1, seq: 2, reason: 'drain_timeout' }]);
  });

  it('keeps suppressing a left instance whose entry outlives its tombstone', () => {
    const r = registry({ tombstoneRetentionMs: 1000, maxTombstones: 1 });
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.applyLeave(leave('w1', 'a', 2, 'stopped'), at(0));
    r.applyLeave(leave('w2', 'x', 1, 'stopped'), at(1)); // evicts the tombstone of w1/a by count
    r.prune(at(5000)); // and the platform is down: the stopped entry is still owed
    expect(r.applyBeat(beat('w1', 'a', 3), at(5001))).toMatchObject({ ok: false, reason: 'suppressed' });
    expect(collected(r)).toEqual([
      { worker: 'w1', instance: 'a', state: 'stopped', beats: 1, seq: 2, reason: undefined },
      { worker: 'w2', instance: 'x', state: 'stopped', beats: 0, seq: 1, reason: undefined },
    ]);
  });

  it('retires an instance announced by a Leave the registry never saw, and reports it when the worker is unknown', () => {
    const r = registry();
    expect(r.applyLeave(leave('w1', 'a', 9, 'stopped', { reason: 'done' }), at(0))).toEqual({
      ok: true, state: 'stopped', transition: 'stopped',
    });
    expect(collected(r)).toEqual([{ worker: 'w1', instance: 'a', state: 'stopped', beats: 0, seq: 9, reason: 'done' }]);
    expect(r.applyBeat(beat('w1', 'a', 10), at(1))).toMatchObject({ ok: false, reason: 'suppressed' });

    r.applyBeat(beat('w2', 'b', 1), at(2));
    expect(r.applyLeave(leave('w2', 'old', 4, 'stopped'), at(3))).toEqual({ ok: true, state: 'stopped' });
    expect(r.applyBeat(beat('w2', 'old', 5), at(4))).toMatchObject({ ok: false, reason: 'suppressed' });
    expect(collected(r).map((p) => `${p.worker}/${p.instance}`)).toEqual(['w1/a', 'w2/b']);
  });

  it('keeps tombstones for the whole retention and forgets them after it', () => {
    const r = registry({ tombstoneRetentionMs: 600_000 });
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.applyLeave(leave('w1', 'a', 2, 'stopped'), at(1000));
    ping(r, at(1001));
    expect(r.prune(at(600_999))).toEqual({ tombstones: 0, lost: 0 });
    expect(r.applyBeat(beat('w1', 'a', 3), at(600_999))).toMatchObject({ ok: false, reason: 'suppressed' });
    expect(r.prune(at(601_000))).toEqual({ tombstones: 1, lost: 0 });
    expect(r.tombstoneCount()).toBe(0);
  });

  it('bounds the number of tombstones, forgetting the oldest first', () => {
    const r = registry({ maxTombstones: 3 });
    for (let i = 0; i < 5; i++) r.applyLeave(leave('w1', `i${i}`, 1, 'stopped'), at(i));
    expect(r.tombstoneCount()).toBe(3);
    ping(r, at(10));
    expect(r.applyBeat(beat('w1', 'i4', 2), at(11))).toMatchObject({ ok: false, reason: 'suppressed' });
    expect(r.applyBeat(beat('w1', 'i2', 2), at(12))).toMatchObject({ ok: false, reason: 'suppressed' });
    expect(r.applyBeat(beat('w1', 'i0', 2), at(13))).toEqual({ ok: true, transition: 'appeared' });
  });
});

describe('Registry: transitions (2.4)', () => {
  it('reports appeared, returned and restarted, and nothing for an ordinary beat', () => {
    const r = registry();
    expect(r.applyBeat(beat('w1', 'a', 1), at(0))).toEqual({ ok: true, transition: 'appeared' });
    expect(r.applyBeat(beat('w1', 'a', 2), at(1))).toEqual({ ok: true });
    r.detectLoss(at(3001));
    expect(r.applyBeat(beat('w1', 'a', 3), at(3002))).toEqual({ ok: true, transition: 'returned' });
    expect(r.applyBeat(beat('w1', 'b', 1), at(3003))).toEqual({ ok: true, transition: 'restarted', replaced: 'a' });
  });
});

describe('Registry: loss detection (2.5)', () => {
  it('reports a silent worker lost after 3 * interval_ms when that is longer than lost_after_min_ms', () => {
    const r = registry({ lostAfterMinMs: 3000 });
    r.applyBeat(beat('w1', 'a', 1, { interval_ms: 2000 }), at(1000));
    expect(r.detectLoss(at(6999))).toEqual([]);
    expect(r.detectLoss(at(7000))).toEqual([{ worker: 'w1', instance: 'a', reason: 'heartbeat_timeout' }]);
    expect(r.detectLoss(at(8000))).toEqual([]);
    expect(r.collect().workers).toEqual([
      {
        worker: 'w1', instance: 'a', state: 'lost', since: WALL0 + 7000, reason: 'heartbeat_timeout', first_seen: WALL0 + 1000,
        last_seen: WALL0 + 1000, beats: 1, beats_total: 1, seq: 1, interval_ms: 2000, status: 'idle',
      },
    ]);
  });

  it('waits lost_after_min_ms when 3 * interval_ms is shorter', () => {
    const r = registry({ lostAfterMinMs: 3000 });
    r.applyBeat(beat('w1', 'a', 1, { interval_ms: 100 }), at(0));
    expect(r.detectLoss(at(2999))).toEqual([]);
    expect(r.detectLoss(at(3000))).toEqual([{ worker: 'w1', instance: 'a', reason: 'heartbeat_timeout' }]);
  });

  it('measures silence from the latest beat, on the monotonic clock', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.applyBeat(beat('w1', 'a', 2), at(2500));
    expect(r.detectLoss({ wall: WALL0 + 999_999, mono: 5499 })).toEqual([]);
    expect(r.detectLoss(at(5500))).toHaveLength(1);
  });

  it('reports a draining worker lost with reason drain_timeout after drain_timeout_ms plus one interval_ms', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1, { interval_ms: 500 }), at(0));
    r.applyLeave(leave('w1', 'a', 2, 'draining', { drain_timeout_ms: 10_000 }), at(1000));
    expect(r.detectLoss(at(11_499))).toEqual([]);
    expect(r.detectLoss(at(11_500))).toEqual([{ worker: 'w1', instance: 'a', reason: 'drain_timeout' }]);
    expect(collected(r)).toEqual([{ worker: 'w1', instance: 'a', state: 'lost', beats: 1, seq: 2, reason: 'drain_timeout' }]);
  });

  it('answers a draining Leave repeated after the drain timed out without reopening the drain', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1, { interval_ms: 500 }), at(0));
    r.applyLeave(leave('w1', 'a', 2, 'draining', { drain_timeout_ms: 1000 }), at(0));
    r.detectLoss(at(1500));
    expect(r.applyLeave(leave('w1', 'a', 2, 'draining', { drain_timeout_ms: 1000 }), at(1600))).toEqual({ ok: true, state: 'draining' });
    expect(collected(r)).toEqual([{ worker: 'w1', instance: 'a', state: 'lost', beats: 1, seq: 2, reason: 'drain_timeout' }]);
    expect(r.applyLeave(leave('w1', 'a', 3, 'stopped'), at(1700))).toMatchObject({ ok: true, state: 'stopped', transition: 'stopped' });
  });

  it('uses the default drain timeout when the Leave names none', () => {
    const r = registry({ defaultDrainTimeoutMs: 30_000 });
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.applyLeave(leave('w1', 'a', 2, 'draining'), at(0));
    expect(r.detectLoss(at(30_999))).toEqual([]);
    expect(r.detectLoss(at(31_000))).toEqual([{ worker: 'w1', instance: 'a', reason: 'drain_timeout' }]);
  });

  it('brings a lost worker back as returned when the same instance beats again', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.detectLoss(at(3000));
    ping(r, at(3001));
    expect(r.applyBeat(beat('w1', 'a', 2, { status: 'busy' }), at(4000))).toEqual({ ok: true, transition: 'returned' });
    expect(r.collect().workers).toEqual([
      {
        worker: 'w1', instance: 'a', state: 'active', since: WALL0 + 4000, first_seen: WALL0, last_seen: WALL0 + 4000,
        beats: 1, beats_total: 2, seq: 2, interval_ms: 1000, status: 'busy',
      },
    ]);
    expect(r.detectLoss(at(6999))).toEqual([]);
    expect(r.detectLoss(at(7000))).toHaveLength(1);
  });
});

describe('Registry: terminal states until accepted (2.7)', () => {
  it('repeats stopped and lost entries in every collect until a ping holding them is acknowledged', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.applyBeat(beat('w2', 'b', 1, { interval_ms: 5000 }), at(0));
    r.applyLeave(leave('w2', 'b', 2, 'stopped'), at(10));
    r.detectLoss(at(3000));
    const expected = [
      { worker: 'w1', instance: 'a', state: 'lost', beats: 1, seq: 1, reason: 'heartbeat_timeout' },
      { worker: 'w2', instance: 'b', state: 'stopped', beats: 1, seq: 2, reason: undefined },
    ];
    expect(collected(r)).toEqual(expected);
    expect(collected(r)).toEqual(expected);
    expect(collected(r)).toEqual(expected);
    ping(r, at(3001));
    expect(r.collect().workers).toEqual([]);
    expect(r.snapshot().map(brief)).toEqual([{ ...expected[0], beats: 0 }]);
  });

  it('acknowledges only the part that was accepted', () => {
    const r = registry();
    r.applyLeave(leave('w1', 'a', 1, 'stopped'), at(0));
    r.applyLeave(leave('w2', 'b', 1, 'stopped'), at(0));
    const { sent } = r.collect();
    r.acknowledge(sent.slice(1), at(1));
    expect(collected(r).map((p) => p.worker)).toEqual(['w1']);
  });

  it('does not let the acknowledgement of an older lost state clear a newer one', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.detectLoss(at(3000));
    const first = r.collect(); // carries lost #1
    r.applyBeat(beat('w1', 'a', 2), at(3100)); // returned
    r.detectLoss(at(6100)); // lost #2, never sent
    r.acknowledge(first.sent, at(6200));
    expect(collected(r)).toEqual([{ worker: 'w1', instance: 'a', state: 'lost', beats: 1, seq: 2, reason: 'heartbeat_timeout' }]);
  });

  it('does not let the acknowledgement of a heartbeat loss clear a later drain timeout', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.detectLoss(at(3000));
    const first = r.collect();
    r.applyLeave(leave('w1', 'a', 2, 'draining', { drain_timeout_ms: 0 }), at(3100));
    r.detectLoss(at(4100));
    r.acknowledge(first.sent, at(4200));
    expect(collected(r)).toEqual([{ worker: 'w1', instance: 'a', state: 'lost', beats: 0, seq: 2, reason: 'drain_timeout' }]);
  });

  it('lists what must survive a crash and restores it, still owed and still suppressing the left instances', () => {
    const before = registry();
    before.applyBeat(beat('w1', 'a', 1), at(0));
    before.applyBeat(beat('w1', 'b', 1), at(1)); // a: lost (restarted)
    before.applyBeat(beat('w2', 'c', 1), at(2));
    before.applyLeave(leave('w2', 'c', 2, 'stopped', { reason: 'SIGTERM' }), at(3));
    before.applyBeat(beat('w3', 'd', 1), at(4));
    before.detectLoss(at(3004)); // b, d: lost (heartbeat_timeout)
    const saved = before.unackedTerminals();
    expect(saved.map(brief)).toEqual([
      { worker: 'w1', instance: 'a', state: 'lost', beats: 1, seq: 1, reason: 'restarted' },
      { worker: 'w1', instance: 'b', state: 'lost', beats: 1, seq: 1, reason: 'heartbeat_timeout' },
      { worker: 'w2', instance: 'c', state: 'stopped', beats: 1, seq: 2, reason: 'SIGTERM' },
      { worker: 'w3', instance: 'd', state: 'lost', beats: 1, seq: 1, reason: 'heartbeat_timeout' },
    ]);

    const after = registry();
    after.restore(JSON.parse(JSON.stringify(saved)) as PingWorker[], { wall: WALL0 + 50_000, mono: 7 });
    expect(after.collect().workers).toEqual(saved);
    expect(after.unackedTerminals()).toEqual(saved);
    expect(after.applyBeat(beat('w1', 'a', 2), at(10))).toMatchObject({ ok: false, reason: 'suppressed' });
    expect(after.applyBeat(beat('w2', 'c', 3), at(11))).toMatchObject({ ok: false, reason: 'suppressed' });
    // A worker lost by silence may come back: it is returned, not suppressed.
    expect(after.applyBeat(beat('w3', 'd', 2), at(12))).toEqual({ ok: true, transition: 'returned' });
    expect(after.applyBeat(beat('w1', 'b', 2), at(13))).toEqual({ ok: true, transition: 'returned' });
    ping(after, at(20));
    expect(collected(after)).toEqual([
      { worker: 'w1', instance: 'b', state: 'active', beats: 0, seq: 2, reason: undefined },
      { worker: 'w3', instance: 'd', state: 'active', beats: 0, seq: 2, reason: undefined },
    ]);
  });

  it('ignores restored entries that are not terminal', () => {
    const r = registry();
    r.restore([{ worker: 'w1', instance: 'a', state: 'active', since: 0, first_seen: 0, last_seen: 0, beats: 1, seq: 1 }], at(0));
    expect(r.collect().workers).toEqual([]);
  });
});

describe('Registry: bounded memory (2.8)', () => {
  it('rejects beats from new worker ids beyond max_workers as capacity and still takes known ones', () => {
    const r = registry({ maxWorkers: 2 });
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.applyBeat(beat('w2', 'b', 1), at(0));
    expect(r.applyBeat(beat('w3', 'c', 1), at(1))).toEqual({
      ok: false, reason: 'capacity', error: 'already tracking 2 workers (max_workers)',
    });
    expect(r.applyBeat(beat('w1', 'a', 2), at(2))).toEqual({ ok: true });
    expect(r.applyBeat(beat('w2', 'b2', 1), at(3))).toEqual({ ok: true, transition: 'restarted', replaced: 'b' });
    expect(r.size).toBe(2);
  });

  it('does not evict entries the platform has not accepted to make room', () => {
    const r = registry({ maxWorkers: 1 });
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.detectLoss(at(3000));
    expect(r.applyBeat(beat('w2', 'b', 1), at(3001))).toMatchObject({ ok: false, reason: 'capacity' });
    r.collect(); // a failed ping changes nothing
    expect(r.applyBeat(beat('w2', 'b', 1), at(3002))).toMatchObject({ ok: false, reason: 'capacity' });
  });

  it('evicts the oldest accepted lost entry to make room for a new worker', () => {
    const r = registry({ maxWorkers: 2 });
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.applyBeat(beat('w2', 'b', 1), at(1000));
    r.detectLoss(at(3000));
    ping(r, at(3001)); // w1 lost, accepted
    r.detectLoss(at(4000));
    ping(r, at(4001)); // w2 lost, accepted
    expect(r.applyBeat(beat('w3', 'c', 1), at(5000))).toEqual({ ok: true, transition: 'appeared' });
    expect(r.snapshot().map((p) => p.worker)).toEqual(['w2', 'w3']);
    expect(r.applyBeat(beat('w4', 'd', 1), at(5001))).toEqual({ ok: true, transition: 'appeared' });
    expect(r.snapshot().map((p) => p.worker)).toEqual(['w3', 'w4']);
    expect(r.applyBeat(beat('w5', 'e', 1), at(5002))).toMatchObject({ ok: false, reason: 'capacity' });
  });

  it('prunes accepted lost entries once the retention has passed, and keeps those that came back', () => {
    const r = registry({ tombstoneRetentionMs: 10_000 });
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.applyBeat(beat('w2', 'b', 1), at(0));
    r.applyBeat(beat('w3', 'c', 1), at(5000));
    r.detectLoss(at(3000));
    ping(r, at(3000));
    r.applyBeat(beat('w2', 'b', 2), at(7000)); // returned
    r.detectLoss(at(8000));
    ping(r, at(8000));
    expect(r.prune(at(12_999))).toEqual({ tombstones: 0, lost: 0 });
    expect(r.prune(at(13_000))).toEqual({ tombstones: 0, lost: 1 });
    expect(r.snapshot().map((p) => `${p.worker}:${p.state}`)).toEqual(['w2:active', 'w3:lost']);
    expect(r.prune(at(18_000))).toEqual({ tombstones: 0, lost: 1 });
    expect(r.snapshot().map((p) => `${p.worker}:${p.state}`)).toEqual(['w2:active']);
  });

  it('keeps an accepted lost worker prunable after an older instance of it stops', () => {
    const r = registry({ tombstoneRetentionMs: 10_000 });
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.applyLeave(leave('w1', 'a', 2, 'draining'), at(0));
    r.applyBeat(beat('w1', 'b', 1), at(0)); // a keeps draining beside b
    r.detectLoss(at(3000)); // b lost
    ping(r, at(3000));
    r.applyLeave(leave('w1', 'a', 3, 'stopped'), at(3500));
    ping(r, at(3500));
    expect(r.prune(at(13_000))).toEqual({ tombstones: 0, lost: 1 });
    expect(r.snapshot()).toEqual([]);
  });
});

describe('Registry: what a ping lists (3)', () => {
  it('lists active and draining workers and unaccepted terminal entries, and counts them by state', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.applyBeat(beat('w2', 'b', 1), at(0));
    r.applyBeat(beat('w3', 'c', 1), at(0));
    r.applyLeave(leave('w2', 'b', 2, 'draining'), at(1));
    r.applyLeave(leave('w3', 'c', 2, 'stopped'), at(1));
    expect(r.countByState()).toEqual({ active: 1, draining: 1, stopped: 1, lost: 0 });
    expect(collected(r).map((p) => `${p.worker}:${p.state}`)).toEqual(['w1:active', 'w2:draining', 'w3:stopped']);
    ping(r, at(2));
    expect(collected(r).map((p) => `${p.worker}:${p.state}`)).toEqual(['w1:active', 'w2:draining']);
    expect(r.countByState()).toEqual({ active: 1, draining: 1, stopped: 0, lost: 0 });
  });

  it('hands back one sent record per listed entry, in the same order', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.applyBeat(beat('w1', 'a', 2), at(0));
    r.applyBeat(beat('w2', 'b', 1), at(0));
    const { workers, sent } = r.collect();
    expect(sent.map((s: SentRecord) => [s.worker, s.instance, s.state, s.beats])).toEqual(
      workers.map((p) => [p.worker, p.instance, p.state, p.beats]),
    );
  });
});

describe('Registry: retired instances across a restart (2.3)', () => {
  it('lists every retired instance with its age, oldest first, whatever retired it', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.applyLeave(leave('w1', 'a', 2, 'draining'), at(100));
    r.applyBeat(beat('w2', 'b', 1), at(200));
    r.applyBeat(beat('w2', 'c', 1), at(300)); // b replaced
    r.applyLeave(leave('w3', 'd', 1, 'stopped'), at(400));
    r.applyLeave(leave('w1', 'a', 3, 'stopped'), at(500)); // a again: now the newest
    expect(r.retiredInstances(at(1000))).toEqual([
      { worker: 'w2', instance: 'b', as: 'replaced', ageMs: 700 },
      { worker: 'w3', instance: 'd', as: 'stopped', ageMs: 600 },
      { worker: 'w1', instance: 'a', as: 'stopped', ageMs: 500 },
    ]);
  });

  it('restores tombstones with their remaining age: suppressed until the retention runs out, then forgotten', () => {
    const before = registry({ tombstoneRetentionMs: 600_000 });
    before.applyBeat(beat('w1', 'a', 1), at(0));
    before.applyLeave(leave('w1', 'a', 2, 'draining'), at(0));
    before.applyBeat(beat('w2', 'b', 1), at(0));
    before.applyLeave(leave('w2', 'b', 2, 'stopped'), at(100_000));
    ping(before, at(100_001)); // the platform accepted the stopped: no terminal entry is owed any more
    const saved = before.retiredInstances(at(200_000)); // a is 200 s old, b 100 s

    // A new process: its monotonic clock starts again near 0.
    const after = registry({ tombstoneRetentionMs: 600_000 });
    after.restoreTombstones(saved, at(5));
    expect(after.tombstoneCount()).toBe(2);
    expect(after.applyBeat(beat('w1', 'a', 3), at(6))).toEqual({
      ok: false, reason: 'suppressed', error: 'instance a of w1 has announced draining',
    });
    expect(after.applyBeat(beat('w2', 'b', 3), at(7))).toEqual({
      ok: false, reason: 'suppressed', error: 'instance b of w2 has announced stopped',
    });
    // A new instance of the same worker is a restart, accepted.
    expect(after.applyBeat(beat('w1', 'a2', 1), at(8))).toEqual({ ok: true, transition: 'appeared' });
    expect(collected(after).map((p) => `${p.worker}/${p.instance}`)).toEqual(['w1/a2']);
    // a retired 200 s before the restart: 400 s left; b: 500 s left.
    expect(after.prune(at(5 + 399_999))).toEqual({ tombstones: 0, lost: 0 });
    expect(after.prune(at(5 + 400_000))).toEqual({ tombstones: 1, lost: 0 });
    expect(after.applyBeat(beat('w2', 'b', 4), at(5 + 499_999))).toMatchObject({ ok: false, reason: 'suppressed' });
    expect(after.prune(at(5 + 500_000))).toEqual({ tombstones: 1, lost: 0 });
    expect(after.applyBeat(beat('w2', 'b', 5), at(5 + 500_001))).toEqual({ ok: true, transition: 'appeared' });
  });

  it('skips restored tombstones past the retention and keeps the newest within max_tombstones', () => {
    const r = registry({ tombstoneRetentionMs: 600_000, maxTombstones: 2 });
    r.restoreTombstones(
      [
        { worker: 'w1', instance: 'expired', as: 'stopped', ageMs: 600_000 },
        { worker: 'w1', instance: 'old', as: 'stopped', ageMs: 300_000 },
        { worker: 'w1', instance: 'mid', as: 'draining', ageMs: 200_000 },
        { worker: 'w1', instance: 'new', as: 'replaced', ageMs: 100_000 },
      ],
      at(0),
    );
    expect(r.retiredInstances(at(0)).map((x) => x.instance)).toEqual(['mid', 'new']);
    expect(r.applyBeat(beat('w1', 'expired', 1), at(1))).toEqual({ ok: true, transition: 'appeared' });
  });

  it('keeps the tombstones ordered by retirement when restored out of order or beside newer ones, so pruning stays exact', () => {
    const r = registry({ tombstoneRetentionMs: 1000 });
    r.applyLeave(leave('w9', 'now', 1, 'stopped'), at(10_000)); // retired at the restart itself
    r.restoreTombstones(
      [
        { worker: 'w1', instance: 'b', as: 'stopped', ageMs: 100 },
        { worker: 'w1', instance: 'a', as: 'draining', ageMs: 900 },
        { worker: 'w9', instance: 'now', as: 'draining', ageMs: 500 }, // older than the one held: the held one wins
        { worker: 'w1', instance: 'c', as: 'stopped', ageMs: -50 }, // from a wall clock that stepped back: counted as new
      ],
      at(10_000),
    );
    expect(r.retiredInstances(at(10_000))).toEqual([
      { worker: 'w1', instance: 'a', as: 'draining', ageMs: 900 },
      { worker: 'w1', instance: 'b', as: 'stopped', ageMs: 100 },
      { worker: 'w9', instance: 'now', as: 'stopped', ageMs: 0 },
      { worker: 'w1', instance: 'c', as: 'stopped', ageMs: 0 },
    ]);
    expect(r.prune(at(10_100))).toEqual({ tombstones: 1, lost: 0 });
    expect(r.prune(at(10_900))).toEqual({ tombstones: 1, lost: 0 });
    expect(r.prune(at(11_000))).toEqual({ tombstones: 2, lost: 0 });
  });
});

describe('Registry: beats_total (3)', () => {
  it('counts every accepted beat of an instance, whatever pings failed or were accepted, and keeps it in the terminal entry', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.applyBeat(beat('w1', 'a', 2), at(100));
    r.collect(); // sent, answer lost: beats stay owed
    r.applyBeat(beat('w1', 'a', 3), at(200));
    expect(r.collect().workers.map((p) => [p.beats, p.beats_total])).toEqual([[3, 3]]);
    ping(r, at(300));
    r.applyBeat(beat('w1', 'a', 3), at(350)); // stale: not counted
    r.applyBeat(beat('w1', 'a', 4), at(400));
    expect(r.collect().workers.map((p) => [p.beats, p.beats_total])).toEqual([[1, 4]]);
    r.applyLeave(leave('w1', 'a', 5, 'stopped'), at(500));
    expect(r.unackedTerminals().map((p) => p.beats_total)).toEqual([4]);
  });
});

describe('Registry: live instances after a restart (2.7)', () => {
  it('brings back the active instances the journal held, reports lost one that stays silent from the restart on, and counts on for one that beats', () => {
    const before = registry();
    before.applyBeat(beat('w1', 'a', 1), at(0));
    before.applyBeat(beat('w2', 'b', 1), at(0));
    before.applyBeat(beat('w2', 'b', 2), at(500));
    before.applyBeat(beat('w3', 'c', 1), at(0));
    before.applyLeave(leave('w3', 'c', 2, 'stopped'), at(600));
    before.collect(); // a ping lists them; the journal keeps live instances as last sent
    const saved = JSON.parse(JSON.stringify(before.durable())) as PingWorker[];
    expect(saved.map((p) => [p.worker, p.state, p.beats_total])).toEqual([['w1', 'active', 1], ['w2', 'active', 2], ['w3', 'stopped', 1]]);
    expect(saved.find((p) => p.worker === 'w1')?.meta).toBeUndefined();

    const after = registry();
    const t0 = 1_000_000; // a restart much later: the deadline counts from it, not from the last beat
    after.restore(saved, at(t0));
    expect(after.restoreLive(saved, at(t0))).toBe(2);
    expect(after.collect().workers.map((p) => `${p.worker}:${p.state}`).sort()).toEqual(['w1:active', 'w2:active', 'w3:stopped']);
    expect(after.detectLoss(at(t0 + 2999))).toEqual([]);
    expect(after.applyBeat(beat('w2', 'b', 2), at(t0 + 1000))).toMatchObject({ ok: false, reason: 'stale' });
    expect(after.applyBeat(beat('w2', 'b', 3), at(t0 + 1000))).toEqual({ ok: true });
    expect(after.detectLoss(at(t0 + 3000))).toEqual([{ worker: 'w1', instance: 'a', reason: 'heartbeat_timeout' }]);
    expect(after.collect().workers.map((p) => [p.worker, p.state, p.beats, p.beats_total]).sort()).toEqual([
      ['w1', 'lost', 0, 1], ['w2', 'active', 1, 3], ['w3', 'stopped', 1, 1],
    ]);
    // A retired instance is not brought back, nor one the registry already holds.
    expect(after.restoreLive(saved, at(t0 + 3001))).toBe(0);
  });

  it('keeps a live instance in the journal as the last ping listed it: a beat between pings changes nothing to write', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1), at(0));
    // Never listed: nothing a platform saw, so nothing to keep but the instance itself.
    expect(r.durable().map((p) => [p.seq, p.beats_total])).toEqual([[0, 0]]);
    r.collect();
    const listed = JSON.stringify(r.durable());
    expect(r.durable().map((p) => [p.seq, p.beats_total])).toEqual([[1, 1]]);
    r.applyBeat(beat('w1', 'a', 2), at(1000));
    r.applyBeat(beat('w1', 'a', 3), at(2000));
    expect(JSON.stringify(r.durable())).toBe(listed);
    r.collect();
    expect(r.durable().map((p) => [p.seq, p.beats_total])).toEqual([[3, 3]]);
  });

  it('journals a restored live instance at least as it was restored, before any ping lists it again', () => {
    const before = registry();
    before.applyBeat(beat('w1', 'a', 1), at(0));
    before.applyBeat(beat('w1', 'a', 2), at(500));
    before.collect();
    const saved = JSON.parse(JSON.stringify(before.durable())) as PingWorker[];
    const after = registry();
    after.restoreLive(saved, at(1_000_000));
    after.applyBeat(beat('w1', 'a', 3), at(1_000_500));
    expect(after.durable().map((p) => [p.seq, p.beats_total])).toEqual([[2, 2]]);
  });

  it('reports the current instance as a conflict when a replaced instance beats again, but not a left one', () => {
    const r = registry();
    r.applyBeat(beat('w1', 'a', 1), at(0));
    r.applyBeat(beat('w1', 'b', 1), at(10));
    expect(r.applyBeat(beat('w1', 'a', 2), at(20))).toMatchObject({ ok: false, reason: 'suppressed', conflict: 'b' });
    r.applyLeave(leave('w1', 'b', 2, 'draining'), at(30));
    r.applyBeat(beat('w1', 'c', 1), at(40));
    const late = r.applyBeat(beat('w1', 'b', 3), at(50));
    expect(late).toMatchObject({ ok: false, reason: 'suppressed' });
    expect(late).not.toHaveProperty('conflict');
  });
});
