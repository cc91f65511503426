/**
 * Bringing back, after a restart, the terminal entries the platform had not
 * accepted (read from the state directory by the daemon). Pure: the registry
 * hands in its entry store and the time.
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
      beats: p.beats, unacked: true, deadline: Infinity, gen: 0,
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

/** How a restored terminal entry's instance is retired, if it is. */
function restoredRetirement(p: PingWorker): RetiredAs | undefined {
  if (p.state === 'stopped') return 'stopped';
  if (p.reason === 'drain_timeout') return 'draining';
  if (p.reason === 'restarted') return 'replaced';
  return undefined;
}
