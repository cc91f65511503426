/**
 * The daemon's clock, with a stall guard. Durations use a monotonic clock, so
 * a wall-clock jump changes nothing. When the event loop was blocked (a long
 * GC, a stopped process, an overloaded host), the blocked time is credited:
 * the monotonic reading the registry sees skips it, so workers are not
 * declared lost for time the daemon itself was not running (the way a gossip
 * failure detector refuses to convict peers after a local pause).
 */
import type { Instant } from '../core/time.js';

export class RunClock {
  private credited = 0;
  private lastSample = performance.now();
  /** Total stalled time credited so far, for logs and metrics. */
  stalls = 0;

  constructor(
    private readonly sampleEveryMs: number,
    /** Lateness beyond this counts as a stall. */
    private readonly stallThresholdMs: number,
  ) {}

  readonly now = (): Instant => ({ wall: Date.now(), mono: performance.now() - this.credited });

  /** Call every `sampleEveryMs`; returns the stall credited now (0 if none). */
  sample(): number {
    const raw = performance.now();
    const late = raw - this.lastSample - this.sampleEveryMs;
    this.lastSample = raw;
    if (late <= this.stallThresholdMs) return 0;
    this.credited += late;
    this.stalls++;
    return late;
  }
}
