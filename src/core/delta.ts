/**
 * Delta pings (PROTOCOL.md 3.1): what the next ping lists, and whether it is
 * `full` or a `delta`. Pure: time comes in as an argument.
 *
 * The registry tells the tracker of every entry whose state, `status`,
 * `meta` or `interval_ms` changes (`changed()`, one Map write). Such an
 * entry is *pending* until a ping that listed it at that revision is
 * accepted (and, for a terminal state, until the registry no longer owes
 * it). A delta lists exactly the pending entries, so building one costs the
 * number of changes, not the number of workers. The roster follows the same
 * pending entries, one XOR each; a full ping rebuilds it from what it lists.
 *
 * Rules (the contract's, in one place):
 * - full when: the platform did not offer deltas in its last 2xx answer
 *   (`"delta": true`), no ping of this daemon instance was completely accepted
 *   yet, a full ping is owed (a `resync`, a 409, a full ping not yet completely
 *   accepted), `fullEveryMs` passed since the last full ping that was, or the
 *   ping is `final`;
 * - `base` is the `seq` of the most recent ping all of whose parts were
 *   accepted with a 2xx that did not ask for a resync;
 * - every part carries the same `mode`, `base` and the roster after the
 *   whole ping is applied.
 */
import type { Beat, PingWorker } from '../protocol/schemas.js';
import { listEntry, type Entry, type SentRecord } from './entry.js';
import { Roster, rosterKey, type RosterValue } from './roster.js';

export type PingMode = 'full' | 'delta';

/** What the registry calls on every change a delta must carry. */
export interface ChangeSink {
  changed(e: Entry): void;
}

/** The registry as the tracker sees it. */
export interface DeltaSource {
  /** Every entry a full ping lists. */
  collect(): { workers: PingWorker[]; sent: SentRecord[] };
  /** Whether `e` is still tracked (not removed or replaced since it changed). */
  holds(e: Entry): boolean;
}

export interface PingPlan {
  mode: PingMode;
  /** Delta only: the last completely accepted ping. */
  base?: number;
  roster: RosterValue;
  workers: PingWorker[];
  sent: SentRecord[];
}

/** What a platform's 2xx answer says about deltas. */
export interface DeltaAnswer {
  delta?: boolean;
  resync?: boolean;
}

export interface DeltaOptions {
  /** A full ping at least this often (ms, counted from the last completely accepted one). */
  fullEveryMs: number;
}

interface Pending {
  entry: Entry;
  rev: number;
}

export class DeltaTracker implements ChangeSink {
  private readonly pending = new Map<string, Pending>();
  private rev = 0;
  private readonly roster = new Roster();
  /** The platform's last 2xx answer offered deltas. */
  private offered = false;
  private fullOwed = true;
  private base: number | undefined;
  private lastFullMono = -Infinity;
  /** The ping in flight: its pending revisions by key, and how it is going. */
  private flight: { seq: number; mode: PingMode; startMono: number; revs: Map<string, number>; resync: boolean } | undefined;

  constructor(private readonly opts: DeltaOptions) {}

  changed(e: Entry): void {
    this.pending.set(rosterKey(e.worker, e.instance), { entry: e, rev: ++this.rev });
  }

  /** Entries waiting to be listed (a delta lists them all). */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Decides the mode of ping `seq` starting at `nowMono` and collects what it lists. */
  plan(source: DeltaSource, seq: number, nowMono: number, final: boolean): PingPlan {
    const full = final || !this.offered || this.fullOwed || this.base === undefined ||
      nowMono - this.lastFullMono >= this.opts.fullEveryMs;
    const revs = new Map<string, number>();
    const workers: PingWorker[] = [];
    const sent: SentRecord[] = [];
    for (const [key, p] of this.pending) {
      const e = p.entry;
      if (!source.holds(e)) {
        // Removed since it changed (a `stopped` the platform accepted, a dropped report): out of the roster.
        this.roster.set(e.worker, e.instance, undefined);
        this.pending.delete(key);
        continue;
      }
      revs.set(key, p.rev);
      if (full) continue;
      this.roster.set(e.worker, e.instance, e.state);
      workers.push(listEntry(e));
      sent.push({ worker: e.worker, instance: e.instance, state: e.state, gen: e.gen, beats: e.beats });
    }
    this.flight = { seq, mode: full ? 'full' : 'delta', startMono: nowMono, revs, resync: false };
    if (!full) return { mode: 'delta', base: this.base, roster: this.roster.value(), workers, sent };
    const all = source.collect();
    this.roster.rebuild(all.workers);
    return { mode: 'full', roster: this.roster.value(), ...all };
  }

  /**
   * A part was accepted (2xx; the registry has applied `sent` first): entries
   * it listed at their current revision are no longer pending, unless the
   * registry still owes their terminal state.
   */
  accepted(sent: readonly SentRecord[], answer: DeltaAnswer): void {
    const f = this.flight;
    if (f === undefined) return;
    this.offered = answer.delta === true;
    if (answer.resync === true) {
      f.resync = true;
      this.fullOwed = true;
    }
    this.delivered(sent);
  }

  /** The platform has what `sent` carried (accepted, or dropped as if delivered): no longer pending at those revisions. */
  delivered(sent: readonly SentRecord[]): void {
    const f = this.flight;
    if (f === undefined || f.revs.size === 0) return;
    for (const s of sent) {
      const key = rosterKey(s.worker, s.instance);
      const rev = f.revs.get(key);
      if (rev === undefined) continue;
      const p = this.pending.get(key);
      if (p !== undefined && p.rev === rev && !p.entry.unacked) this.pending.delete(key);
    }
  }

  /** The platform answered 409: it wants a full ping, at once. */
  conflict(): void {
    this.fullOwed = true;
    if (this.flight !== undefined) this.flight.resync = true;
  }

  /** The ping ended; `complete` when every part was accepted. */
  finish(complete: boolean): void {
    const f = this.flight;
    this.flight = undefined;
    if (f === undefined || !complete || f.resync) return;
    this.base = f.seq;
    if (f.mode === 'full') {
      this.fullOwed = false;
      this.lastFullMono = f.startMono;
    }
  }
}

/** Whether a beat changes what a delta must carry of `e` (`inflight` and `load` never do). */
export function changesListed(e: Entry, beat: Partial<Beat> & Pick<Beat, 'interval_ms'>): boolean {
  return e.status !== (beat.status ?? 'idle') || e.intervalMs !== beat.interval_ms || !sameMeta(e.meta, beat.meta);
}

/** Flat meta objects (string/number/boolean values), compared key by key. */
export function sameMeta(a: Beat['meta'], b: Beat['meta']): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  // On every beat: no allocation (no Object.keys).
  let n = 0;
  for (const k in a) {
    if (a[k] !== b[k] || !Object.hasOwn(b, k)) return false;
    n++;
  }
  for (const k in b) {
    void k;
    n--;
  }
  return n === 0;
}
