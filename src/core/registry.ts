/**
 * The worker registry: who is alive, what the next ping owes the platform.
 * Pure: time comes in as an argument, nothing here touches a socket or a file.
 *
 * A worker's current instance lives in `live` in one of four states:
 *
 *   (first beat) -> active -- Leave draining --> draining -- Leave stopped --> stopped
 *                   active <-- beat (same instance) -- lost <-- silence / drain timeout
 *
 * `beats` counts beats accepted since the last ping the platform accepted for
 * that entry; an accepted ping subtracts what it carried, so beats that arrive
 * while a ping is in flight are kept for the next one. Terminal states
 * (`stopped`, `lost`) carry `unacked` until a ping holding them is accepted.
 * An instance replaced by a restart before its terminal state was accepted
 * moves to `displaced`, so its report is not lost either.
 */
import type { Beat, Leave, LeavePhase, PingWorker, WorkerState } from '../protocol/schemas.js';
import type { Instant } from './time.js';
import { Tombstones, instanceKey, type RetiredAs, type RetiredInstance } from './tombstones.js';

export interface RegistryOptions {
  maxWorkers: number;
  lostAfterMinMs: number;
  tombstoneRetentionMs: number;
  maxTombstones: number;
  defaultDrainTimeoutMs: number;
}

export interface Entry {
  worker: string;
  instance: string;
  state: WorkerState;
  since: number;
  reason?: string;
  firstSeen: number;
  lastSeen: number;
  seq: number;
  intervalMs: number;
  status?: Beat['status'];
  inflight?: number;
  load?: number;
  meta?: Beat['meta'];
  beats: number;
  /** A terminal state the platform has not accepted yet. */
  unacked: boolean;
  /** Monotonic time at which silence (or a drain) turns this entry `lost`. */
  deadline: number;
  /** Monotonic time the platform accepted this `lost` entry (for pruning). */
  ackedMono?: number;
  /** Bumped on every state change, so an acknowledgement clears only the state it carried. */
  gen: number;
}

export type Transition = 'appeared' | 'restarted' | 'returned' | 'draining' | 'stopped' | 'lost';

export type BeatOutcome =
  /** `replaced`: the instance this beat's restart retired just now (on `restarted`). */
  | { ok: true; transition?: Transition; replaced?: string }
  | { ok: false; reason: 'stale' | 'suppressed' | 'capacity'; error: string };

export type LeaveOutcome =
  | { ok: true; state: LeavePhase; transition?: Transition }
  | { ok: false; error: string };

/** What one ping carried for one entry; handed back on acceptance. */
export interface SentRecord {
  worker: string;
  instance: string;
  state: WorkerState;
  /** The entry's `gen` when collected. */
  gen: number;
  beats: number;
}

export interface LossEvent {
  worker: string;
  instance: string;
  reason: 'heartbeat_timeout' | 'drain_timeout';
}

const ACCEPTED: BeatOutcome = Object.freeze({ ok: true });

export class Registry {
  private readonly live = new Map<string, Entry>();
  private readonly displaced = new Map<string, Entry>();
  /** Accepted `lost` entries, oldest first: evicted first when at capacity. */
  private readonly evictable = new Set<string>();
  private readonly tombstones: Tombstones;
  /** Replaced instances dropped because too many piled up (a counter for metrics and logs). */
  droppedDisplaced = 0;
  /** Earliest deadline of any entry (may be early, never late). */
  private nextDeadline = Infinity;

  constructor(private readonly opts: RegistryOptions) {
    this.tombstones = new Tombstones(opts.tombstoneRetentionMs, opts.maxTombstones);
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
      return ACCEPTED;
    }
    const retired = this.tombstones.get(beat.worker, beat.instance);
    if (retired !== undefined) {
      return { ok: false, reason: 'suppressed', error: `instance ${beat.instance} of ${beat.worker} has ${retiredText(retired)}` };
    }
    const e = this.live.get(beat.worker);
    // The entry itself still says so when its tombstone was pruned or evicted while the platform was down.
    const left = e !== undefined && e.instance === beat.instance ? leftAs(e) : this.displacedAs(beat.worker, beat.instance);
    if (left !== undefined) {
      return { ok: false, reason: 'suppressed', error: `instance ${beat.instance} of ${beat.worker} has ${retiredText(left)}` };
    }
    if (e === undefined || e.instance !== beat.instance) {
      if (e === undefined && !this.makeRoom()) {
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
    let transition: Transition | undefined;
    if (e.state === 'lost') {
      transition = 'returned';
      e.gen++;
      e.state = 'active';
      e.since = t.wall;
      e.reason = undefined;
      e.unacked = false;
      e.ackedMono = undefined;
      this.evictable.delete(e.worker);
    }
    this.absorb(e, beat, t);
    e.beats++;
    return transition ? { ok: true, transition } : { ok: true };
  }

  applyLeave(leave: Leave, t: Instant): LeaveOutcome {
    const phase = leave.phase;
    const e = this.find(leave.worker, leave.instance);
    if (e === undefined) {
      // An instance we hold no entry for: retire it so none of its beats is ever forwarded.
      const retired = this.tombstones.get(leave.worker, leave.instance);
      if (retired === 'stopped' || (retired === 'draining' && phase === 'draining')) return { ok: true, state: retired };
      this.tombstones.retire(leave.worker, leave.instance, phase, t.mono);
      // Report it only when the worker is otherwise unknown (say, the daemon restarted since its last beat).
      if (!this.live.has(leave.worker) && this.makeRoom()) {
        const entry = this.newEntry({ ...leave, interval_ms: this.opts.lostAfterMinMs }, t);
        entry.beats = 0;
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

  /** Turns silent and over-drained workers `lost`. Cheap when no deadline has passed. */
  /** Whether some instance has a loss deadline (an `active` or `draining` one); false: detectLoss has nothing to do. */
  lossPossible(): boolean {
    return this.nextDeadline !== Infinity;
  }

  detectLoss(t: Instant): LossEvent[] {
    if (t.mono < this.nextDeadline) return [];
    const events: LossEvent[] = [];
    let next = Infinity;
    for (const e of this.allEntries()) {
      if (e.state !== 'active' && e.state !== 'draining') continue;
      if (e.deadline <= t.mono) {
        const reason = e.state === 'draining' ? 'drain_timeout' : 'heartbeat_timeout';
        e.gen++;
        e.state = 'lost';
        e.since = t.wall;
        e.reason = reason;
        e.unacked = true;
        e.deadline = Infinity;
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
      workers.push(toPingWorker(e));
      sent.push({ worker: e.worker, instance: e.instance, state: e.state, gen: e.gen, beats: e.beats });
    };
    for (const e of this.displaced.values()) add(e);
    for (const e of this.live.values()) {
      if (e.state === 'active' || e.state === 'draining' || e.unacked) add(e);
    }
    return { workers, sent };
  }

  /** Applies a ping (or part) the platform accepted. */
  acknowledge(sent: readonly SentRecord[], t: Instant): void {
    for (const s of sent) {
      const e = this.find(s.worker, s.instance);
      if (e === undefined) continue;
      e.beats = Math.max(0, e.beats - s.beats);
      // A state that changed since the ping was collected is still owed (lost, back, lost again).
      if (!e.unacked || e.gen !== s.gen) continue;
      e.unacked = false;
      if (this.live.get(e.worker) !== e) {
        this.displaced.delete(instanceKey(s.worker, s.instance));
      } else if (e.state === 'stopped') {
        this.live.delete(e.worker);
      } else {
        e.ackedMono = t.mono;
        this.evictable.add(e.worker);
      }
    }
  }

  /** Forgets expired tombstones and `lost` entries accepted longer ago than the retention. */
  prune(t: Instant): { tombstones: number; lost: number } {
    const tombstones = this.tombstones.prune(t.mono);
    let lost = 0;
    for (const worker of this.evictable) {
      const e = this.live.get(worker);
      if (e !== undefined && t.mono - (e.ackedMono ?? t.mono) < this.opts.tombstoneRetentionMs) break;
      this.evictable.delete(worker);
      if (e?.state === 'lost' && !e.unacked) this.live.delete(worker);
      lost++;
    }
    return { tombstones, lost };
  }

  /** Every tracked entry as a ping would show it (a stopped one leaves once accepted; see README /v1/workers). */
  snapshot(): PingWorker[] {
    return [...this.displaced.values(), ...this.live.values()].map(toPingWorker);
  }

  countByState(): Record<WorkerState, number> {
    const counts: Record<WorkerState, number> = { active: 0, draining: 0, stopped: 0, lost: 0 };
    for (const e of this.live.values()) counts[e.state]++;
    for (const e of this.displaced.values()) counts[e.state]++;
    return counts;
  }

  /** Terminal entries the platform has not accepted: what must survive a crash. */
  unackedTerminals(): PingWorker[] {
    const out: PingWorker[] = [];
    for (const e of this.allEntries()) if (e.unacked) out.push(toPingWorker(e));
    return out;
  }

  /**
   * Restores unaccepted terminal entries after a restart (from the state directory).
   * Instances that left or were replaced stay suppressed; one lost by silence may
   * still come back (`returned`). Of several entries of one worker, the newest
   * instance (by `first_seen`, then list order) is the current one.
   */
  restore(entries: readonly PingWorker[], t: Instant): void {
    for (const p of entries) {
      if (p.state !== 'stopped' && p.state !== 'lost') continue;
      if (this.find(p.worker, p.instance) !== undefined) continue;
      const e: Entry = {
        worker: p.worker, instance: p.instance, state: p.state, since: p.since, reason: p.reason,
        firstSeen: p.first_seen, lastSeen: p.last_seen, seq: p.seq, intervalMs: p.interval_ms ?? this.opts.lostAfterMinMs,
        status: p.status, inflight: p.inflight, load: p.load, meta: p.meta,
        beats: p.beats, unacked: true, deadline: Infinity, gen: 0,
      };
      const as = restoredRetirement(p);
      if (as !== undefined) this.tombstones.retire(p.worker, p.instance, as, t.mono);
      const current = this.live.get(p.worker);
      if (current === undefined) {
        this.live.set(p.worker, e);
        continue;
      }
      const currentIsOlder = current.unacked && current.firstSeen <= e.firstSeen;
      const [older, newer] = currentIsOlder ? [current, e] : [e, current];
      if (this.tombstones.get(older.worker, older.instance) === undefined) {
        this.tombstones.retire(older.worker, older.instance, 'replaced', t.mono);
      }
      this.live.set(p.worker, newer);
      this.displaced.set(instanceKey(older.worker, older.instance), older);
    }
  }

  tombstoneCount(): number {
    return this.tombstones.size;
  }

  /** Every retired instance with its age, oldest first: what the state journal keeps across a restart. */
  retiredInstances(t: Instant): RetiredInstance[] {
    return this.tombstones.list(t.mono);
  }

  /**
   * Brings back retired instances after a restart (from the state directory),
   * each `ageMs` old at `t`, so their beats stay suppressed for the rest of the
   * retention; those older than it are skipped.
   */
  restoreTombstones(list: readonly RetiredInstance[], t: Instant): void {
    this.tombstones.restore(list, t.mono);
  }

  private newEntry(beat: Pick<Beat, 'worker' | 'instance' | 'seq' | 'interval_ms'> & Partial<Beat>, t: Instant): Entry {
    const e: Entry = {
      worker: beat.worker, instance: beat.instance, state: 'active', since: t.wall,
      firstSeen: t.wall, lastSeen: t.wall, seq: beat.seq, intervalMs: beat.interval_ms,
      beats: 1, unacked: false, deadline: Infinity, gen: 0,
    };
    this.absorb(e, beat, t);
    return e;
  }

  /** Latest fields win. */
  private absorb(e: Entry, beat: Partial<Beat> & Pick<Beat, 'seq' | 'interval_ms'>, t: Instant): void {
    e.seq = beat.seq;
    e.lastSeen = t.wall;
    e.intervalMs = beat.interval_ms;
    e.status = beat.status ?? 'idle';
    e.inflight = beat.inflight;
    e.load = beat.load;
    e.meta = beat.meta;
    this.setDeadline(e, t.mono + Math.max(3 * beat.interval_ms, this.opts.lostAfterMinMs));
  }

  private enterLeavePhase(e: Entry, leave: Leave, t: Instant): void {
    // `evictable` is keyed by worker: a replaced instance must not unmark the current one.
    if (this.live.get(e.worker) === e) this.evictable.delete(e.worker);
    e.ackedMono = undefined;
    e.gen++;
    e.state = leave.phase;
    e.since = t.wall;
    if (leave.reason !== undefined) e.reason = leave.reason;
    else if (leave.phase === 'draining' || e.reason === 'heartbeat_timeout' || e.reason === 'drain_timeout') e.reason = undefined;
    this.tombstones.retire(e.worker, e.instance, leave.phase, t.mono);
    if (leave.phase === 'stopped') {
      e.unacked = true;
      e.deadline = Infinity;
    } else {
      e.unacked = false;
      const drainMs = leave.drain_timeout_ms ?? this.opts.defaultDrainTimeoutMs;
      this.setDeadline(e, t.mono + drainMs + e.intervalMs);
    }
  }

  private find(worker: string, instance: string): Entry | undefined {
    const live = this.live.get(worker);
    return live !== undefined && live.instance === instance ? live : this.displaced.get(instanceKey(worker, instance));
  }

  private displacedAs(worker: string, instance: string): RetiredAs | undefined {
    if (this.displaced.size === 0) return undefined;
    const d = this.displaced.get(instanceKey(worker, instance));
    return d === undefined ? undefined : (leftAs(d) ?? 'replaced');
  }

  private *allEntries(): IterableIterator<Entry> {
    yield* this.displaced.values();
    yield* this.live.values();
  }

  /**
   * A new instance replaces `old`. A draining `old` keeps draining beside it
   * (a rolling restart); an active one died unannounced and is reported
   * `lost`; whatever the platform was owed about `old` is kept. Returns
   * whether `old` was retired now (it was not if it had left before).
   */
  private retireForRestart(old: Entry, t: Instant): boolean {
    if (old.state === 'active') {
      old.gen++;
      old.state = 'lost';
      old.since = t.wall;
      old.reason = 'restarted';
      old.unacked = true;
      old.deadline = Infinity;
    }
    const retiredNow = this.tombstones.get(old.worker, old.instance) === undefined;
    if (retiredNow) this.tombstones.retire(old.worker, old.instance, 'replaced', t.mono);
    this.evictable.delete(old.worker);
    if (!old.unacked && old.beats === 0 && old.state !== 'draining') return retiredNow;
    this.displaced.set(instanceKey(old.worker, old.instance), old);
    if (this.displaced.size > this.opts.maxWorkers) {
      // A worker flapping through restarts while the platform is down: keep memory bounded, say so.
      const oldest = this.displaced.keys().next().value as string;
      this.displaced.delete(oldest);
      this.droppedDisplaced++;
    }
    return retiredNow;
  }

  /** At capacity, forget the oldest `lost` entry the platform already knows about. */
  private makeRoom(): boolean {
    if (this.live.size < this.opts.maxWorkers) return true;
    for (const worker of this.evictable) {
      this.evictable.delete(worker);
      const e = this.live.get(worker);
      if (e?.state === 'lost' && !e.unacked) {
        this.live.delete(worker);
        return true;
      }
    }
    return false;
  }

  private setDeadline(e: Entry, deadline: number): void {
    e.deadline = deadline;
    if (deadline < this.nextDeadline) this.nextDeadline = deadline;
  }
}

/** Whether an entry's instance announced a Leave (so its beats are suppressed). */
function leftAs(e: Entry): RetiredAs | undefined {
  if (e.state === 'draining' || e.state === 'stopped') return e.state;
  return e.state === 'lost' && e.reason === 'drain_timeout' ? 'draining' : undefined;
}

/** How a restored terminal entry's instance is retired, if it is. */
function restoredRetirement(p: PingWorker): RetiredAs | undefined {
  if (p.state === 'stopped') return 'stopped';
  if (p.reason === 'drain_timeout') return 'draining';
  if (p.reason === 'restarted') return 'replaced';
  return undefined;
}

function retiredText(as: string): string {
  return as === 'replaced' ? 'been replaced by a newer instance' : `announced ${as}`;
}

export function toPingWorker(e: Entry): PingWorker {
  const p: PingWorker = {
    worker: e.worker, instance: e.instance, state: e.state, since: e.since,
    first_seen: e.firstSeen, last_seen: e.lastSeen, beats: e.beats, seq: e.seq, interval_ms: e.intervalMs,
  };
  if (e.reason !== undefined) p.reason = e.reason;
  if (e.status !== undefined) p.status = e.status;
  if (e.inflight !== undefined) p.inflight = e.inflight;
  if (e.load !== undefined) p.load = e.load;
  if (e.meta !== undefined) p.meta = e.meta;
  return p;
}
