/**
 * The daemon's clocks. Durations use a monotonic clock, so a wall-clock jump
 * changes nothing. Two readings:
 *
 * - `now()`: plain monotonic time, for pacing pings and timeouts.
 * - `listeningNow()`: monotonic time during which the daemon could hear its
 *   workers. It skips time the event loop was blocked (a long GC, a stopped
 *   process, an overloaded host) and time its input was cut (NATS
 *   disconnected). The registry measures silence with it, so no worker is
 *   declared lost for time the daemon itself was deaf, the way a gossip
 *   failure detector refuses to convict peers after a local pause. Without
 *   it, a five-second NATS restart would report every worker on the node
 *   `lost` and then `returned`.
 */
import type { Instant } from '../core/time.js';

export class RunClock {
  /** Deaf time already over: stalls plus closed input outages. */
  private credited = 0;
  private deafSince: number | undefined;
  private lastSample = performance.now();
  /** Stalls credited so far, for logs and tests. */
  stalls = 0;

  constructor(
    private readonly sampleEveryMs: number,
    /** Lateness beyond this counts as a stall. */
    private readonly stallThresholdMs: number,
  ) {}

  readonly now = (): Instant => ({ wall: Date.now(), mono: performance.now() });

  readonly listeningNow = (): Instant => {
    const raw = performance.now();
    const deaf = this.deafSince === undefined ? 0 : raw - this.deafSince;
    return { wall: Date.now(), mono: raw - this.credited - deaf };
  };

  /** Call every `sampleEveryMs`; returns the stall credited now (0 if none). */
  sample(): number {
    const raw = performance.now();
    const late = raw - this.lastSample - this.sampleEveryMs;
    this.lastSample = raw;
    if (late <= this.stallThresholdMs) return 0;
    // A stall inside an outage is already deaf time: do not count it twice.
    if (this.deafSince === undefined) this.credited += late;
    this.stalls++;
    return late;
  }

  /**
   * Sampling starts again after a pause in which nothing needed it (no
   * worker could be convicted): the pause is not a stall.
   */
  resume(): void {
    this.lastSample = performance.now();
  }

  /** The input is cut (NATS disconnected): silence from now on is no evidence. */
  deaf(): void {
    this.deafSince ??= performance.now();
  }

  /** The input is back; returns how long it was cut, in ms. */
  hearing(): number {
    if (this.deafSince === undefined) return 0;
    const gap = performance.now() - this.deafSince;
    this.credited += gap;
    this.deafSince = undefined;
    return gap;
  }
}
