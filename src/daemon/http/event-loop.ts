/**
 * Event-loop delay from `perf_hooks.monitorEventLoopDelay`, for /livez and
 * /metrics. The histogram is read over rolling windows: the window in
 * progress once it holds enough samples, else the last complete one, so a
 * stall reported now is recent and one from an hour ago is forgotten.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/** Delays beyond the sampling period, in ms (0 for a loop that is never late). */
export interface LoopDelay {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  /** Samples behind these numbers (one per `resolutionMs` of a responsive loop). */
  samples: number;
  /** How long the numbers were gathered over. */
  windowMs: number;
}

export interface EventLoopMonitorOptions {
  /** Sampling period of the histogram. Default {@link LOOP_SAMPLE_MS}. */
  resolutionMs?: number;
  /** Length of a window. Default 60000. */
  windowMs?: number;
}

/**
 * Sampling period of every event-loop delay histogram in the daemon (ours and
 * prom-client's default `nodejs_eventloop_lag_*`). Each sample is a timer that
 * wakes the process, so it is as coarse as the purpose allows: /livez judges
 * delays of seconds, and two samples a second over a one-minute window (120)
 * still tell a loop that stalls again and again from one long pause. At
 * prom-client's default of 10 ms the sampling alone was most of an idle
 * daemon's CPU.
 */
export const LOOP_SAMPLE_MS = 500;

const NS_PER_MS = 1e6;

export class EventLoopMonitor {
  private readonly histogram: IntervalHistogram;
  private readonly resolutionMs: number;
  private readonly windowMs: number;
  private readonly minSamples: number;
  private windowStart = performance.now();
  private previous: LoopDelay | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: EventLoopMonitorOptions = {}) {
    this.resolutionMs = opts.resolutionMs ?? LOOP_SAMPLE_MS;
    this.histogram = monitorEventLoopDelay({ resolution: this.resolutionMs });
    this.windowMs = opts.windowMs ?? 60_000;
    // A window in progress is used once it holds half of what a responsive loop would give it.
    this.minSamples = Math.max(1, Math.floor(this.windowMs / this.resolutionMs / 2));
  }

  /** Starts sampling; idempotent. The window timer never keeps the process alive. */
  start(): void {
    if (this.timer) return;
    this.histogram.enable();
    this.windowStart = performance.now();
    this.timer = setInterval(() => this.rotate(), this.windowMs).unref();
  }

  /** Stops sampling; idempotent. */
  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.histogram.disable();
  }

  delay(): LoopDelay {
    const current = this.read();
    return current.samples >= this.minSamples || !this.previous ? current : this.previous;
  }

  private rotate(): void {
    this.previous = this.read();
    this.histogram.reset();
    this.windowStart = performance.now();
  }

  private read(): LoopDelay {
    const h = this.histogram;
    const samples = h.count;
    // The histogram measures the whole timer period; the delay is what lies beyond it.
    const ms = (ns: number) =>
      samples === 0 || !Number.isFinite(ns) ? 0 : Math.max(0, Math.round((ns / NS_PER_MS - this.resolutionMs) * 100) / 100);
    return {
      p50Ms: ms(h.percentile(50)),
      p99Ms: ms(h.percentile(99)),
      maxMs: ms(h.max),
      meanMs: ms(h.mean),
      samples,
      windowMs: Math.round(performance.now() - this.windowStart),
    };
  }
}
