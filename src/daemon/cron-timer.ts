/**
 * Housekeeping on a cron schedule without a per-second tick. node-cron's own
 * runner wakes every second to ask whether a schedule matches (an
 * `Intl.DateTimeFormat` format per schedule per second, the largest part of
 * an idle daemon's CPU); here node-cron only parses the expression, the next
 * run is computed once in local time, and one timer is armed for it. Plain
 * Date arithmetic, not Intl: formatting loads ICU's data (about 8 MB of RSS
 * for three schedules); node-cron's own walker is kept for the tokens only it
 * understands (`L`, `#`).
 *
 * A timer runs on the monotonic clock while cron speaks wall time, so the
 * timer is never armed for more than `MAX_ARM_MS`: a wall-clock jump delays
 * a run by at most that much, and a timer that fires before its wall time
 * (the clock went back) re-arms instead of running early.
 */
import { createTask, parse, type ParsedFields } from 'node-cron';

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
  // Parsed by node-cron: it throws on a bad expression.
  const fields = parse(expression);
  const plain = [fields.dayOfMonth, fields.dayOfWeek].every((f) => f.every((v) => typeof v === 'number'));
  // Never started: node-cron only computes here, for the tokens plain arithmetic does not cover.
  const task = plain ? undefined : createTask(expression, () => undefined, { name: opts.name });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;
  let nextRunAt = 0;

  const next = (after: number): number =>
    (task ? task.getNextRuns(1)[0]?.getTime() : nextLocalMatch(fields, after)) ?? after + MAX_ARM_MS;

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
      void task?.destroy();
    },
  };
}

/** Five years: every schedule cron can write matches within that (29 Feb on a Monday is the rarest). */
const HORIZON_MS = 5 * 366 * 86_400_000;

/**
 * The first whole second after `after` (ms) that matches every field, in
 * local time; node-cron's rule (all fields must match, day of month and day
 * of week included). Jumps field by field, so a yearly schedule takes a few
 * dozen steps, not a second-by-second walk.
 */
export function nextLocalMatch(f: ParsedFields, after: number): number | undefined {
  const has = (xs: readonly (number | string)[]) => {
    const set = new Set(xs);
    return (v: number) => set.has(v);
  };
  const [sec, min, hour, dom, mon, dow] = [f.second, f.minute, f.hour, f.dayOfMonth, f.month, f.dayOfWeek].map(has) as ((v: number) => boolean)[];
  let d = new Date(Math.floor(after / 1000) * 1000 + 1000);
  const limit = after + HORIZON_MS;
  while (d.getTime() < limit) {
    const prev = d.getTime();
    if (!mon!(d.getMonth() + 1)) d = new Date(d.getFullYear(), d.getMonth() + 1, 1);
    else if (!dom!(d.getDate()) || !dow!(d.getDay())) d = new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1);
    else if (!hour!(d.getHours())) d = new Date(d.getFullYear(), d.getMonth(), d.getDate(), d.getHours() + 1);
    else if (!min!(d.getMinutes())) d = new Date(d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes() + 1);
    else if (!sec!(d.getSeconds())) d = new Date(prev + 1000);
    else return prev;
    // A daylight-saving change can map a local time back: always move forward.
    if (d.getTime() <= prev) d = new Date(prev + 1000);
  }
  return undefined;
}
