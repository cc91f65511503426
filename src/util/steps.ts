/**
 * Ordered best-effort steps: each runs in turn, alone in its try/catch, so one
 * failure never skips the rest (shutdown sequences of the daemon, the demo and
 * the worker client all go this way).
 */
import { settleWithin } from './deadline.js';

export interface StepResult {
  name: string;
  ms: number;
  ok: boolean;
  error?: string;
}

export interface StepRunnerOptions {
  /** Milliseconds since some origin; `performance.now` by default. Tests pass a fake. */
  now?: () => number;
  /** Told after each step, for logging. */
  onStep?: (result: StepResult) => void;
  /** Told what a failing step threw, before `onStep` (for logs that want the error itself, stack and all). */
  onError?: (name: string, err: unknown) => void;
  /** Races a promise against a timer; the default uses real timers. Fake schedulers pass their own. */
  settleWithin?: (p: Promise<unknown>, ms: number) => Promise<boolean>;
}

/** Runs named steps in the order they are called; `results` lists what each did. */
export class StepRunner {
  readonly results: StepResult[] = [];
  private readonly now: () => number;
  private readonly race: (p: Promise<unknown>, ms: number) => Promise<boolean>;

  constructor(private readonly opts: StepRunnerOptions = {}) {
    this.now = opts.now ?? (() => performance.now());
    this.race = opts.settleWithin ?? settleWithin;
  }

  /**
   * Runs `fn` now (synchronously up to its first await, so a first step takes
   * effect before the caller's promise is returned). With `timeoutMs`, the
   * step is abandoned (and counted failed) when it has not settled by then.
   */
  async run(name: string, fn: () => unknown, timeoutMs?: number): Promise<StepResult> {
    const t0 = this.now();
    let error: string | undefined;
    try {
      const done = Promise.resolve(fn());
      if (timeoutMs === undefined) await done;
      else {
        // Surface the step's own rejection when it settles in time.
        const caught = done.then(
          () => undefined,
          (err: unknown) => err,
        );
        if (!(await this.race(caught, timeoutMs))) error = `did not finish within ${timeoutMs} ms`;
        else {
          const err = await caught;
          if (err !== undefined) {
            error = errorText(err);
            this.opts.onError?.(name, err);
          }
        }
      }
    } catch (err) {
      error = errorText(err);
      this.opts.onError?.(name, err);
    }
    const result: StepResult = { name, ms: this.now() - t0, ok: error === undefined };
    if (error !== undefined) result.error = error;
    this.results.push(result);
    this.opts.onStep?.(result);
    return result;
  }
}

/** A one-line readable form of anything thrown. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
