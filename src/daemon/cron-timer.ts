/**
 * Housekeeping on a cron schedule without a per-second tick. node-cron's own
 * runner wakes every second to ask whether a schedule matches (an
 * `Intl.DateTimeFormat` format per schedule per second, the largest part of
 * an idle daemon's CPU); here node-cron only parses the expression and
 * computes the next run (time zone included), and one timer is armed for it.
 *
 * A timer runs on the monotonic clock while cron speaks wall time, so the
 * timer is never armed for more than `MAX_ARM_MS`: a wall-clock jump delays
 * a run by at most that much, and a timer that fires before its wall time
 * (the clock went back) re-arms instead of running early.
 */
import { createTask, type ScheduledTask } from 'node-cron';

/** Longest single timer: one wake-up a minute bounds the effect of a wall-clock jump. */
export const MAX_ARM_MS = 60_000;

export interface CronJob {
  readonly name: string;
  /** Wall time (ms) of the next run, for logs and tests. */
  readonly nextRunAt: number;
  stop(): void;
}

export interface CronTimerOptions {
  name: string;
  /** Told when a run throws or rejects; the schedule goes on. */
  onError?: (err: unknown) => void;
  /** Told when a run is skipped because the previous one has not finished. */
  onOverlap?: () => void;
}

export function scheduleCron(expression: string, fn: () => unknown, opts: CronTimerOptions): CronJob {
  const now = Date.now;
  // Parsed by node-cron (it throws on a bad expression), never started: it computes, the timer wakes.
  const task: ScheduledTask = createTask(expression, () => undefined, { name: opts.name });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;
  let nextRunAt = 0;

  const next = (after: number): number => task.getNextRuns(1)[0]?.getTime() ?? after + MAX_ARM_MS;

  const arm = (): void => {
    if (stopped) return;
    const delay = Math.min(Math.max(0, nextRunAt - now()), MAX_ARM_MS);
    timer = setTimeout(fire, delay);
    timer.unref();
  };

  const fire = (): void => {
    timer = undefined;
    if (stopped) return;
    const t = now();
    if (t < nextRunAt) {
      arm();
      return;
    }
    nextRunAt = next(t);
    if (running) opts.onOverlap?.();
    else {
      try {
        const r = fn();
        if (r instanceof Promise) {
          running = r.catch((err: unknown) => opts.onError?.(err)).finally(() => (running = undefined));
        }
      } catch (err) {
        opts.onError?.(err);
      }
    }
    arm();
  };

  nextRunAt = next(now());
  arm();
  return {
    name: opts.name,
    get nextRunAt() {
      return nextRunAt;
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      void task.destroy();
    },
  };
}
