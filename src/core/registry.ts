/**
 * The worker registry: who is alive, what the next ping owes the platform.
 * Pure: time comes in as an argument, nothing here touches a socket or a file.
 *
 * A worker's current instance lives in `live` in one of four states; every
 * edge below is one call of `enter()`:
 *
 *   (first beat) -> active -- Leave draining --> draining -- Leave stopped --> stopped
 *                   active <-- beat (same instance) -- lost <-- silence / drain timeout
 *                   active -- new instance (restart) --> lost (restarted), displaced
 *
 * `beats` counts beats accepted since the last ping the platform accepted for
 * that entry; an accepted ping subtracts what it carried, so beats that arrive
 * while a ping is in flight are kept for the next one. Terminal states
 * (`stopped`, `lost`) carry `unacked` until a ping holding them is accepted.
 * An instance replaced by a restart before its terminal state was accepted
 * moves to `displaced`, so its report is not lost either.
 */
import type { Beat, Leave, PingWorker, WorkerState } from '../protocol/schemas.js';
import { changesListed, type ChangeSink } from './delta.js';
import { EntryStore } from './entry-store.js';
import {
  isTerminal, leftAs, listEntry, retiredText, toPingWorker,
  type BeatOutcome, type Entry, type LeaveOutcome, type LossEvent, type SentRecord, type Transition,
} from './entry.js';
import { restoreAlive, restoreOwed } from './registry-restore.js';
import type { Instant } from './time.js';
import { instanceKey, type RetiredInstance } from './tombstones.js';

export { toPingWorker };
export type { BeatOutcome, Entry, LeaveOutcome, LossEvent, SentRecord, Transition };

export interface RegistryOptions {
  maxWorkers: number;
  lostAfterMinMs: number;
  tombstoneRetentionMs: number;
  maxTombstones: number;
  defaultDrainTimeoutMs: number;
}

const ACCEPTED: BeatOutcome = Object.freeze({ ok: true });

export class Registry {
  private readonly store: EntryStore;
  private readonly live: Map<string, Entry>;
  /** Earliest deadline of any entry (may be early, never late). */
  private nextDeadline = Infinity;
  /** Told of every change a delta ping must carry (delta.ts); none when deltas are off. */
  private changes: ChangeSink | undefined;

  constructor(private readonly opts: RegistryOptions) {
    this.store = new EntryStore(opts);
    this.live = this.store.live;
  }

  get size(): number {
    return this.live.size;
  }

  applyBeat(beat: Beat, t: Instant): BeatOutcome {
    const current = this.live.get(beat.worker);
    if (current !== undefined && current.instance === beat.instance && current.state === 'active' && beat.seq > current.seq) {
      // The hot path: an active instance is never retired (a Leave or a restart moves it out of `active` first).
      this.absorb(current, beat, t);
      current.beats++;
      current.beatsTotal++;
      return ACCEPTED;
    }
    const e = this.live.get(beat.worker);
    // The entry itself still says so when its tombstone was pruned or evicted while the platform was down.
    const retired = this.store.tombstones.get(beat.worker, beat.instance) ??
      (e !== undefined && e.instance === beat.instance ? leftAs(e) : this.store.displacedAs(beat.worker, beat.instance));
    if (retired !== undefined) {
      const error = `instance ${beat.instance} of ${beat.worker} has ${retiredText(retired)}`;
      // A replaced instance that still beats: two processes claim this worker id.
      const current = retired === 'replaced' && e !== undefined && e.instance !== beat.instance ? e.instance : undefined;
      return current === undefined ? { ok: false, reason: 'suppressed', error } : { ok: false, reason: 'suppressed', error, conflict: current };
    }
    if (e === undefined || e.instance !== beat.instance) {
      if (e === undefined && !this.store.makeRoom()) {
        return { ok: false, reason: 'capacity', error: `already tracking ${this.opts.maxWorkers} workers (max_workers)` };
      }
      const replaced = e !== undefined && this.retireForRestart(e, t) ? e.instance : undefined;
      this.live.set(beat.worker, this.newEntry(beat, t));
      if (e === undefined) return { ok: true, transition: 'appeared' };
      return replaced === undefined ? { ok: true, transition: 'restarted' } : { ok: true, transition: 'restarted', replaced };
    }
    if (beat.seq <= e.seq) {
      return { ok: false, reason: 'stale', error: `seq ${beat.seq} is not after ${e.seq} for instance ${beat.instance}` };
    }
    const returned = e.state === 'lost';
    if (returned) this.enter(e, 'active', t);
    this.absorb(e, beat, t);
    e.beats++;
    e.beatsTotal++;
    return returned ? { ok: true, transition: 'returned' } : { ok: true };
  }

  applyLeave(leave: Leave, t: Instant): LeaveOutcome {
    const phase = leave.phase;
    const e = this.store.find(leave.worker, leave.instance);
    if (e === undefined) {
      // An instance we hold no entry for: retire it so none of its beats is ever forwarded.
      const retired = this.store.tombstones.get(leave.worker, leave.instance);
      if (retired === 'stopped' || (retired === 'draining' && phase === 'draining')) return { ok: true, state: retired };
      this.store.tombstones.retire(leave.worker, leave.instance, phase, t.mono);
      // Report it only when the worker is otherwise unknown (say, the daemon restarted since its last beat).
      if (!this.live.has(leave.worker) && this.store.makeRoom()) {
        const entry = this.newEntry({ ...leave, interval_ms: this.opts.lostAfterMinMs }, t);
        entry.beats = entry.beatsTotal = 0;
        this.live.set(leave.worker, entry);
        this.enterLeavePhase(entry, leave, t);
        return { ok: true, state: phase, transition: phase };
      }
      return { ok: true, state: phase };
    }
    if (e.state === 'stopped' || (e.state === 'draining' && phase === 'draining')) {
      return { ok: true, state: e.state };
    }
    // A repeated `draining` after the drain timed out is a retry, not a new drain: harmless, same reply.
    if (phase === 'draining' && e.state === 'lost' && e.reason === 'drain_timeout') return { ok: true, state: 'draining' };
    e.seq = Math.max(e.seq, leave.seq);
    this.enterLeavePhase(e, leave, t);
    return { ok: true, state: phase, transition: phase };
  }

  /** Whether some instance has a loss deadline (an `active` or `draining` one); false: detectLoss has nothing to do. */
  lossPossible(): boolean { return this.nextDeadline !== Infinity; }

  /** Turns silent and over-drained workers `lost`. Cheap when no deadline has passed. */
  detectLoss(t: Instant): LossEvent[] {
    if (t.mono < this.nextDeadline) return [];
    const events: LossEvent[] = [];
    let next = Infinity;
    for (const e of this.store.all()) {
      if (e.state !== 'active' && e.state !== 'draining') continue;
      if (e.deadline <= t.mono) {
        const reason = e.state === 'draining' ? 'drain_timeout' : 'heartbeat_timeout';
        this.enter(e, 'lost', t, reason);
        events.push({ worker: e.worker, instance: e.instance, reason });
      } else if (e.deadline < next) {
        next = e.deadline;
      }
    }
    this.nextDeadline = next;
    return events;
  }

  /** The entries the next ping must carry, and what to hand back when it is accepted. */
  collect(): { workers: PingWorker[]; sent: SentRecord[] } {
    const workers: PingWorker[] = [];
    const sent: SentRecord[] = [];
    const add = (e: Entry): void => {
      workers.push(listEntry(e));
      sent.push({ worker: e.worker, instance: e.instance, state: e.state, gen: e.gen, beats: e.beats });
    };
    for (const e of this.store.displaced.values()) add(e);
    for (const e of this.live.values()) {
      if (e.state === 'active' || e.state === 'draining' || e.unacked) add(e);
    }
    return { workers, sent };
  }

  /** Applies a ping (or part) the platform accepted. */
  acknowledge(sent: readonly SentRecord[], t: Instant): void {
    for (const s of sent) {
      const e = this.store.find(s.worker, s.instance);
      if (e === undefined) continue;
      e.beats = Math.max(0, e.beats - s.beats);
      // A state that changed since the ping was collected is still owed (lost, back, lost again).
      if (!e.unacked || e.gen !== s.gen) continue;
      e.unacked = false;
      if (this.live.get(e.worker) !== e) {
        this.store.displaced.delete(instanceKey(s.worker, s.instance));
      } else if (e.state === 'stopped') {
        this.live.delete(e.worker);
      } else {
        e.ackedMono = t.mono;
        this.store.evictable.add(e.worker);
      }
    }
  }

  /** Restores unaccepted terminal entries after a restart (from the state directory); see `restoreOwed`. */
  restore(entries: readonly PingWorker[], t: Instant): void {
    restoreOwed(this.store, entries, t, this.opts.lostAfterMinMs);
  }

  /**
   * Restores the instances that were `active` before a restart (see
   * `restoreAlive`), each with a loss deadline measured from `t`: one that
   * never beats again is reported `lost` (`heartbeat_timeout`). Returns how many.
   */
  restoreLive(entries: readonly PingWorker[], t: Instant): number {
    const restored = restoreAlive(this.store, entries, t, (ms) => this.silenceDeadline(ms, t));
    for (const e of restored) this.setDeadline(e, e.deadline);
    return restored.length;
  }

  /** Brings back retired instances after a restart, each `ageMs` old at `t`: suppressed for the rest of their retention. */
  restoreTombstones(list: readonly RetiredInstance[], t: Instant): void {
    this.store.tombstones.restore(list, t.mono);
  }

  /** Delta pings: `sink` hears of every state change and every change of `status`, `meta` or `interval_ms`. */
  watch(sink: ChangeSink): void { this.changes = sink; }
  /** Whether `e` is still tracked (neither removed nor dropped). */
  holds(e: Entry): boolean { return this.store.find(e.worker, e.instance) === e; }

  // Views and upkeep: see EntryStore.
  prune(t: Instant): { tombstones: number; lost: number } { return this.store.prune(t); }
  snapshot(): PingWorker[] { return this.store.snapshot(); }
  countByState(): Record<WorkerState, number> { return this.store.countByState(); }
  unackedTerminals(): PingWorker[] { return this.store.unackedTerminals(); }
  durable(): PingWorker[] { return this.store.durable(); }
  retiredInstances(t: Instant): RetiredInstance[] { return this.store.retiredInstances(t); }
  tombstoneCount(): number { return this.store.tombstones.size; }
  /** Reports of replaced instances dropped because more than `maxWorkers` awaited acceptance. */
  get droppedDisplaced(): number { return this.store.droppedDisplaced; }
  /** Retirements forgotten before their retention (more than `maxTombstones`): no longer suppressed. */
  get tombstonesEvictedEarly(): number { return this.store.tombstones.evictedEarly; }

  /**
   * The one way into a state (each edge of the diagram above): bumps `gen`
   * (so an acknowledgement of the old state clears nothing), marks terminal
   * states owed, and sets the deadline the new state runs against.
   */
  private enter(e: Entry, state: WorkerState, t: Instant, reason?: string, drainMs = this.opts.defaultDrainTimeoutMs): void {
    e.gen++;
    e.state = state;
    this.changes?.changed(e);
    e.since = t.wall;
    e.reason = reason;
    e.unacked = isTerminal(state);
    e.ackedMono = undefined;
    // `evictable` is keyed by worker: a replaced instance must not unmark the current one.
    if (this.live.get(e.worker) === e) this.store.evictable.delete(e.worker);
    if (state === 'active') this.setDeadline(e, this.silenceDeadline(e.intervalMs, t));
    else if (state === 'draining') this.setDeadline(e, t.mono + drainMs + e.intervalMs);
    else e.deadline = Infinity;
  }

  private newEntry(beat: Pick<Beat, 'worker' | 'instance' | 'seq' | 'interval_ms'> & Partial<Beat>, t: Instant): Entry {
    const e: Entry = {
      worker: beat.worker, instance: beat.instance, state: 'active', since: t.wall,
      firstSeen: t.wall, lastSeen: t.wall, seq: beat.seq, intervalMs: beat.interval_ms,
      beats: 1, beatsTotal: 1, unacked: false, deadline: Infinity, gen: 0,
    };
    this.enter(e, 'active', t);
    this.absorb(e, beat, t);
    return e;
  }

  /** Latest fields win. */
  private absorb(e: Entry, beat: Partial<Beat> & Pick<Beat, 'seq' | 'interval_ms'>, t: Instant): void {
    if (this.changes !== undefined && changesListed(e, beat)) this.changes.changed(e);
    e.seq = beat.seq;
    e.lastSeen = t.wall;
    e.intervalMs = beat.interval_ms;
    e.status = beat.status ?? 'idle';
    e.inflight = beat.inflight;
    e.load = beat.load;
    e.meta = beat.meta;
    this.setDeadline(e, this.silenceDeadline(beat.interval_ms, t));
  }

  private enterLeavePhase(e: Entry, leave: Leave, t: Instant): void {
    // A `stopped` without a reason keeps the drain's reason, but not a loss reason the Leave overrides.
    const kept = leave.phase === 'stopped' && e.reason !== 'heartbeat_timeout' && e.reason !== 'drain_timeout' ? e.reason : undefined;
    this.enter(e, leave.phase, t, leave.reason ?? kept, leave.drain_timeout_ms);
    this.store.tombstones.retire(e.worker, e.instance, leave.phase, t.mono);
  }

  /**
   * A new instance replaces `old`. A draining `old` keeps draining beside it
   * (a rolling restart); an active one died unannounced and is reported
   * `lost`; whatever the platform was owed about `old` is kept. Returns
   * whether `old` was retired now (it was not if it had left before).
   */
  private retireForRestart(old: Entry, t: Instant): boolean {
    if (old.state === 'active') this.enter(old, 'lost', t, 'restarted');
    const retiredNow = this.store.tombstones.get(old.worker, old.instance) === undefined;
    if (retiredNow) this.store.tombstones.retire(old.worker, old.instance, 'replaced', t.mono);
    this.store.evictable.delete(old.worker);
    if (!old.unacked && old.beats === 0 && old.state !== 'draining') return retiredNow;
    this.store.displace(old);
    return retiredNow;
  }

  /** Silence for three intervals (at least `lostAfterMinMs`) turns an active entry `lost`. */
  private silenceDeadline(intervalMs: number, t: Instant): number {
    return t.mono + Math.max(3 * intervalMs, this.opts.lostAfterMinMs);
  }

  private setDeadline(e: Entry, deadline: number): void {
    e.deadline = deadline;
    if (deadline < this.nextDeadline) this.nextDeadline = deadline;
  }
}
