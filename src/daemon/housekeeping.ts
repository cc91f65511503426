/**
 * The daemon's scheduled jobs (cron expressions from `housekeeping.*`, armed
 * as one timer each by cron-timer.ts): a summary log line, pruning of retired
 * and long-lost registry entries, and compaction of the state journal. Each
 * job skips a run while its previous one is still going.
 */
import type { Logger } from 'pino';
import type { HousekeepingConfig } from '../config/types.js';
import type { Pacer } from '../core/pacer.js';
import type { Registry } from '../core/registry.js';
import type { Clock } from '../core/time.js';
import type { Journal } from './journal/journal.js';
import type { Metrics } from './metrics.js';
import { scheduleCron, type CronJob } from './cron-timer.js';
import { readCounters } from './snapshot.js';

export interface HousekeepingDeps {
  schedule: HousekeepingConfig;
  registry: Pick<Registry, 'prune' | 'countByState'>;
  pacer: Pick<Pacer, 'currentIntervalMs'>;
  journal: Pick<Journal, 'compact'>;
  metrics: Metrics;
  /** The clock the registry measures with. */
  clock: Clock;
  log: Logger;
}

export class Housekeeping {
  private tasks: CronJob[] = [];
  private lastSummary = { beats: 0, pings: 0 };

  constructor(private readonly d: HousekeepingDeps) {}

  start(): void {
    const h = this.d.schedule;
    const onError = (err: unknown) => this.d.log.error({ err }, 'housekeeping job failed');
    this.tasks.push(
      scheduleCron(h.summaryCron, () => this.logSummary(), { name: 'summary', onError }),
      scheduleCron(h.pruneCron, () => this.prune(), { name: 'prune', onError }),
      scheduleCron(h.compactCron, () => this.d.journal.compact().catch(() => undefined), { name: 'compact', onError }),
    );
  }

  stop(): void {
    for (const t of this.tasks.splice(0)) t.stop();
  }

  private prune(): void {
    const pruned = this.d.registry.prune(this.d.clock());
    if (pruned.tombstones + pruned.lost > 0) this.d.log.debug(pruned, 'pruned');
  }

  /** Beats in and pings out since the last summary; rejects and workers as they stand. */
  private async logSummary(): Promise<void> {
    const c = await readCounters(this.d.metrics);
    const beats = c.beatsAccepted;
    const pings = Object.values(c.pings).reduce((n, v) => n + v, 0);
    const rejected = Object.fromEntries(Object.entries(c.beatsRejected).filter(([, n]) => n > 0));
    this.d.log.info(
      {
        beats_in: beats - this.lastSummary.beats,
        pings_out: pings - this.lastSummary.pings,
        workers: this.d.registry.countByState(),
        rejected_total: rejected,
        interval_ms: this.d.pacer.currentIntervalMs(),
      },
      'summary',
    );
    this.lastSummary = { beats, pings };
  }
}
