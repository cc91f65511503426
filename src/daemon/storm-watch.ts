/**
 * Rate-limited warnings for what a restart storm or a worker id claimed twice
 * costs, which the registry only counts (docs/PROTOCOL.md 2.8): reports of replaced
 * instances dropped to keep memory bounded, retirements forgotten before their
 * retention, and beats from an instance that a newer one replaced. The first
 * of each kind is logged at once, the rest at most once per window, with how
 * many happened since; the counts themselves are metrics.
 */
import type { Logger } from 'pino';

export interface StormSources {
  /** Reports of replaced instances dropped (cumulative). */
  droppedDisplaced(): number;
  /** Retirements evicted before their retention (cumulative). */
  tombstonesEvictedEarly(): number;
}

export interface StormLimits {
  maxWorkers: number;
  maxTombstones: number;
}

interface Conflict {
  worker: string;
  /** The replaced instance that still beats. */
  stale: string;
  current: string;
}

export class StormWatch {
  private logged = { dropped: 0, evicted: 0 };
  private lastLog = { dropped: -Infinity, evicted: -Infinity, conflicts: -Infinity };
  private conflicts = 0;
  private sample: Conflict | undefined;

  constructor(
    private readonly log: Logger,
    private readonly sources: StormSources,
    private readonly limits: StormLimits,
    private readonly windowMs = 10_000,
  ) {}

  /** A beat came from `stale`, which `current` replaced: two processes claim `worker`. */
  conflict(worker: string, stale: string, current: string, nowMono: number): void {
    this.conflicts++;
    this.sample = { worker, stale, current };
    this.check(nowMono);
  }

  /** Logs what is due; call it often (the daemon's tick). */
  check(nowMono: number): void {
    const due = (kind: keyof StormWatch['lastLog']) => nowMono - this.lastLog[kind] >= this.windowMs;
    const dropped = this.sources.droppedDisplaced() - this.logged.dropped;
    if (dropped > 0 && due('dropped')) {
      this.logged.dropped += dropped;
      this.lastLog.dropped = nowMono;
      this.log.warn(
        { dropped, dropped_total: this.logged.dropped, reason: 'too_many_replaced', max_workers: this.limits.maxWorkers },
        `dropped ${dropped} lost report(s) of replaced instances: more than max_workers (${this.limits.maxWorkers}) ` +
          'replaced instances were waiting for a ping the platform accepts (a restart storm while the platform is down)',
      );
    }
    const evicted = this.sources.tombstonesEvictedEarly() - this.logged.evicted;
    if (evicted > 0 && due('evicted')) {
      this.logged.evicted += evicted;
      this.lastLog.evicted = nowMono;
      this.log.warn(
        { evicted, evicted_total: this.logged.evicted, reason: 'too_many_tombstones', max_tombstones: this.limits.maxTombstones },
        `forgot ${evicted} retired instance(s) before tombstone_retention_ms: more than max_tombstones ` +
          `(${this.limits.maxTombstones}); late beats of those instances are no longer suppressed`,
      );
    }
    if (this.conflicts > 0 && this.sample !== undefined && due('conflicts')) {
      const { worker, stale, current } = this.sample;
      this.lastLog.conflicts = nowMono;
      this.log.warn(
        { worker, instance: stale, current_instance: current, conflicts: this.conflicts },
        `two processes claim worker ${worker}: instance ${stale} still beats though ${current} replaced it ` +
          `(${this.conflicts} such beat(s) since the last warning; a misconfiguration or a forger; its beats are dropped)`,
      );
      this.conflicts = 0;
      this.sample = undefined;
    }
  }
}
