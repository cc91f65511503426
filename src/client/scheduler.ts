/**
 * Time as the client library sees it: a wall clock and one-shot timers.
 * Injected so unit tests can drive beats, deadlines and jitter by hand
 * instead of sleeping.
 */

export type TimerHandle = unknown;

export interface Scheduler {
  /** Wall-clock milliseconds since the epoch (beats carry it as `ts`). */
  now(): number;
  /**
   * Calls `fn` once after `ms`. `unref: true` means the timer alone does not
   * keep the process alive (a heartbeat must never delay a worker's exit).
   */
  setTimeout(fn: () => void, ms: number, opts?: { unref?: boolean }): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock and node timers. */
export const systemScheduler: Scheduler = {
  now: () => Date.now(),
  setTimeout(fn, ms, opts) {
    const t = setTimeout(fn, ms);
    if (opts?.unref) t.unref();
    return t;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

/** Resolves after `ms` on `scheduler`, or at once when `ms <= 0`. */
export function delay(scheduler: Scheduler, ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => scheduler.setTimeout(resolve, ms));
}
