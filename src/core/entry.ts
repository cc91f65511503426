/**
 * One worker instance as the registry tracks it, the outcomes the registry
 * hands back, and how an entry shows in a ping. Pure.
 */
import type { Beat, LeavePhase, PingWorker, WorkerState } from '../protocol/schemas.js';
import type { RetiredAs } from './tombstones.js';

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
  /**
   * Every beat of this instance the daemon accepted, ever (restored after a
   * restart): `beats` minus nothing, so a platform can count by difference
   * whatever pings are retried or answered too late.
   */
  beatsTotal: number;
  /**
   * What the last ping that listed this instance carried (its `seq` and
   * `beats_total`): the state journal keeps a live instance as it was last
   * sent, so an instance that beats between pings costs no journal write,
   * and after a restart `beats_total` goes on from at least what the
   * platform saw. Undefined until a ping lists it.
   */
  sent?: { seq: number; total: number; at: number };
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
  /**
   * `conflict`: the worker's current instance, when this beat comes from an
   * instance a newer one replaced (two processes claiming one worker id).
   */
  | { ok: false; reason: 'stale' | 'suppressed' | 'capacity'; error: string; conflict?: string };

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

/** `stopped` and `lost` are owed to the platform until a ping holding them is accepted. */
export function isTerminal(state: WorkerState): boolean {
  return state === 'stopped' || state === 'lost';
}

/** Whether an entry's instance announced a Leave (so its beats are suppressed). */
export function leftAs(e: Entry): RetiredAs | undefined {
  if (e.state === 'draining' || e.state === 'stopped') return e.state;
  return e.state === 'lost' && e.reason === 'drain_timeout' ? 'draining' : undefined;
}

export function retiredText(as: string): string {
  return as === 'replaced' ? 'been replaced by a newer instance' : `announced ${as}`;
}

export function toPingWorker(e: Entry): PingWorker {
  const p: PingWorker = {
    worker: e.worker, instance: e.instance, state: e.state, since: e.since,
    first_seen: e.firstSeen, last_seen: e.lastSeen, beats: e.beats, beats_total: e.beatsTotal, seq: e.seq,
    interval_ms: e.intervalMs,
  };
  if (e.reason !== undefined) p.reason = e.reason;
  if (e.status !== undefined) p.status = e.status;
  if (e.inflight !== undefined) p.inflight = e.inflight;
  if (e.load !== undefined) p.load = e.load;
  if (e.meta !== undefined) p.meta = e.meta;
  return p;
}

/** The entry as a ping lists it, remembering what was sent (see `Entry.sent`). */
export function listEntry(e: Entry): PingWorker {
  e.sent = { seq: e.seq, total: e.beatsTotal, at: e.lastSeen };
  return toPingWorker(e);
}

/**
 * What the state journal keeps of an instance that is alive (docs/PROTOCOL.md 2.7):
 * enough to report it `lost` if it never beats after a restart, and to go on
 * counting `beats_total` if it does, as the last ping that listed it carried
 * them (a beat alone changes nothing here, so it costs no journal write). No
 * meta: a ping already carried it.
 */
export function toLiveRecord(e: Entry): PingWorker {
  const sent = e.sent ?? { seq: 0, total: 0, at: e.firstSeen };
  return {
    worker: e.worker, instance: e.instance, state: e.state, since: e.since, first_seen: e.firstSeen,
    last_seen: sent.at, beats: 0, beats_total: sent.total, seq: sent.seq, interval_ms: e.intervalMs,
  };
}
