/**
 * What a starting daemon takes back from its state directory, before anything
 * can change the registry (docs/PROTOCOL.md 2.3, 2.7): the retirements still
 * in force, the terminal entries the platform has not accepted, and the
 * instances that were alive, whose silence counts from when the daemon can
 * hear them again.
 */
import type { Logger } from 'pino';
import type { Registry } from '../core/registry.js';
import type { Journal } from './journal/journal.js';
import type { RunClock } from './run-clock.js';

/** Opens the journal (taking the state-dir lock) and restores what it holds into `registry`. */
export async function restoreState(journal: Journal, registry: Registry, clock: RunClock, log: Logger): Promise<void> {
  const owed = await journal.open();
  const now = clock.listeningNow();
  const retired = journal
    .takeRetired()
    .map((r) => ({ worker: r.worker, instance: r.instance, as: r.as, ageMs: now.wall - r.at }));
  registry.restoreTombstones(retired, now);
  registry.restore(owed, now);
  const alive = registry.restoreLive(owed, now);
  // Restored instances beat over NATS: their silence counts from when the daemon hears it, not from now.
  if (alive > 0) clock.deaf();
  const terminals = owed.filter((e) => e.state === 'stopped' || e.state === 'lost').length;
  if (terminals > 0) log.info({ entries: terminals }, 'restored unaccepted terminal states');
  if (alive > 0) log.info({ instances: alive }, 'restored live instances (lost unless they beat again)');
  if (retired.length > 0) log.info({ instances: retired.length }, 'restored retired instances (still suppressed)');
}
