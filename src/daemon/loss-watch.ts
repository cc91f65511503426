/**
 * The loss ticker: every `tickMs` it samples the stall clock (so a blocked
 * event loop convicts nobody) and asks the registry who has gone silent. It
 * runs only while some instance has a loss deadline: an idle node has
 * nothing to decide and wakes for nothing; the first transition that gives
 * an instance a deadline (it appears, returns, starts draining) starts it
 * again, and the tick that finds no deadline left stops it.
 */
import type { Logger } from 'pino';
import type { LossEvent, Registry } from '../core/registry.js';
import type { RunClock } from './run-clock.js';

export interface LossWatchDeps {
  clock: Pick<RunClock, 'sample' | 'resume' | 'listeningNow' | 'now'>;
  registry: Pick<Registry, 'detectLoss' | 'lossPossible'>;
  log: Logger;
  /** Called each tick before losses are judged (rate-limited storm warnings). */
  onTick?: (nowMono: number) => void;
  /** Called with the instances just declared lost (never empty). */
  onLoss: (losses: LossEvent[]) => void;
}

export class LossWatch {
  private timer: NodeJS.Timeout | undefined;
  private enabled = false;

  constructor(
    private readonly d: LossWatchDeps,
    private readonly tickMs: number,
  ) {}

  /** Whether the ticker is running now. */
  get running(): boolean {
    return this.timer !== undefined;
  }

  /** Allows ticking (the daemon runs) and starts it if some deadline is pending. */
  enable(): void {
    this.enabled = true;
    this.wake();
  }

  /** Starts the ticker if it is allowed, idle, and some instance can be convicted. */
  wake(): void {
    if (this.timer || !this.enabled || !this.d.registry.lossPossible()) return;
    // The pause before this was no stall: nothing needed the clock sampled.
    this.d.clock.resume();
    this.timer = setInterval(() => this.tick(), this.tickMs);
  }

  stop(): void {
    this.enabled = false;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const stalled = this.d.clock.sample();
    if (stalled > 0) this.d.log.warn({ stalled_ms: Math.round(stalled) }, 'event loop stalled; the stalled time does not count toward loss');
    this.d.onTick?.(this.d.clock.now().mono);
    const losses = this.d.registry.detectLoss(this.d.clock.listeningNow());
    if (!this.d.registry.lossPossible()) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    if (losses.length > 0) this.d.onLoss(losses);
  }
}
