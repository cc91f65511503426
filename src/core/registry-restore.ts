/**
 * Bringing back, after a restart, what the state directory held (read by the
 * daemon): the terminal entries the platform had not accepted, and the
 * instances that were alive. Pure: the registry hands in its entry store and
 * the time.
 */
import type { PingWorker } from '../protocol/schemas.js';
import type { Entry } from './entry.js';
import type { EntryStore } from './entry-store.js';
import type { Instant } from './time.js';
import { instanceKey, type RetiredAs } from './tombstones.js';

/**
 * Instances that left or were replaced stay suppressed; one lost by silence
 * may still come back (`returned`). Of several entries of one worker, the
 * newest instance (by `first_seen`, then list order) is the current one; the
 * others are displaced, still owed. `defaultIntervalMs` stands in for an
 * entry saved without `interval_ms`.
 */
export function restoreOwed(into: EntryStore, entries: readonly PingWorker[], t: Instant, defaultIntervalMs: number): void {
  for (const p of entries) {
    if (p.state !== 'stopped' && p.state !== 'lost') continue;
    if (into.find(p.worker, p.instance) !== undefined) continue;
    const e: Entry = {
      worker: p.worker, instance: p.instance, state: p.state, since: p.since, reason: p.reason,
      firstSeen: p.first_seen, lastSeen: p.last_seen, seq: p.seq, intervalMs: p.interval_ms ?? defaultIntervalMs,
      status: p.status, inflight: p.inflight, load: p.load, meta: p.meta,
      beats: p.beats, beatsTotal: p.beats_total ?? p.beats, unacked: true, deadline: Infinity, gen: 0,
      // What a platform may have seen already: a journal write before the next ping must not go below it.
      sent: { seq: p.seq, total: p.beats_total ?? p.beats, at: p.last_seen },
    };
    const as = restoredRetirement(p);
    if (as !== undefined) into.tombstones.retire(p.worker, p.instance, as, t.mono);
    const current = into.live.get(p.worker);
    if (current === undefined) {
      into.live.set(p.worker, e);
      continue;
    }
    const currentIsOlder = current.unacked && current.firstSeen <= e.firstSeen;
    const [older, newer] = currentIsOlder ? [current, e] : [e, current];
    if (into.tombstones.get(older.worker, older.instance) === undefined) {
      into.tombstones.retire(older.worker, older.instance, 'replaced', t.mono);
    }
    into.live.set(p.worker, newer);
    into.displaced.set(instanceKey(older.worker, older.instance), older);
  }
}

/**
 * Instances that were `active` come back `active`, with no beat owed (`beats`
 * 0), `beats_total` where it was journaled, and the deadline `deadlineFor`
 * gives their interval: silence from the restart on turns them `lost`. Skipped:
 * an instance retired since (its tombstone says so), one already held, and
 * one older than the worker's current entry. Returns the restored entries.
 */
export function restoreAlive(
  into: EntryStore,
  entries: readonly PingWorker[],
  t: Instant,
  deadlineFor: (intervalMs: number) => number,
): Entry[] {
  const restored: Entry[] = [];
  for (const p of entries) {
    if (p.state !== 'active' || p.interval_ms === undefined) continue;
    if (into.find(p.worker, p.instance) !== undefined || into.tombstones.get(p.worker, p.instance) !== undefined) continue;
    const current = into.live.get(p.worker);
    if (current !== undefined && current.firstSeen > p.first_seen) continue;
    if (current?.unacked === true) {
      // An older instance still owed (restored just before): this one replaced it.
      if (into.tombstones.get(current.worker, current.instance) === undefined) {
        into.tombstones.retire(current.worker, current.instance, 'replaced', t.mono);
      }
      into.displace(current);
    }
    const e: Entry = {
      worker: p.worker, instance: p.instance, state: 'active', since: p.since, firstSeen: p.first_seen,
      lastSeen: p.last_seen, seq: p.seq, intervalMs: p.interval_ms, beats: 0, beatsTotal: p.beats_total ?? 0,
      unacked: false, deadline: deadlineFor(p.interval_ms), gen: 0,
      sent: { seq: p.seq, total: p.beats_total ?? 0, at: p.last_seen },
    };
    into.live.set(p.worker, e);
    restored.push(e);
  }
  return restored;
}

/** How a restored terminal entry's instance is retired, if it is. */
function restoredRetirement(p: PingWorker): RetiredAs | undefined {
  if (p.state === 'stopped') return 'stopped';
  if (p.reason === 'drain_timeout') return 'draining';
  if (p.reason === 'restarted') return 'replaced';
  return undefined;
}
