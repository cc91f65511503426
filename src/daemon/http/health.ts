/**
 * /healthz: every check runs with its own timeout, all of them together
 * (Promise.allSettled), and the result is reused for `cacheMs`. Callers that
 * arrive while a round runs share it, so a probe storm costs one round of
 * checks and no caller waits longer than the slowest check's timeout.
 *
 * A check that ignores its abort signal and never settles is not started
 * again: the next round waits on the same pending run (bounded by the
 * timeout again), so a hung dependency cannot pile up work.
 */
import { within } from '../../util/deadline.js';

export type CheckStatus = 'ok' | 'fail' | 'timeout';

export interface CheckResult {
  status: CheckStatus;
  duration_ms: number;
  error?: string;
  /** Extra facts a check returns (an RTT, an age). */
  detail?: Record<string, unknown>;
}

export interface HealthReport {
  status: 'ok' | 'fail';
  /** Wall time (ms) the round finished. */
  checked_at: number;
  checks: Record<string, CheckResult>;
}

/**
 * Resolves (optionally with details) when healthy, throws when not. The
 * signal is aborted when the check's timeout passes: I/O should stop then.
 */
export type CheckFn = (signal: AbortSignal) => Promise<Record<string, unknown> | void> | Record<string, unknown> | void;

export interface HealthCheck {
  name: string;
  timeoutMs: number;
  run: CheckFn;
}

export interface HealthOptions {
  /** How long a finished round is reused. Default 1000. */
  cacheMs?: number;
  /** Monotonic ms; injectable for tests. */
  now?: () => number;
  /** Wall ms for `checked_at`. */
  wallNow?: () => number;
}

type Outcome = { ok: true; detail?: Record<string, unknown> } | { ok: false; error: string };

export class Health {
  private readonly checks = new Map<string, HealthCheck>();
  /** Runs of a check still pending (including ones a round gave up on). */
  private readonly pending = new Map<string, { startedAt: number; outcome: Promise<Outcome> }>();
  private cached: { at: number; report: HealthReport } | undefined;
  private inflight: Promise<HealthReport> | undefined;
  private readonly cacheMs: number;
  private readonly now: () => number;
  private readonly wallNow: () => number;
  /** Rounds of checks run so far (a storm of callers should add one). */
  rounds = 0;

  constructor(checks: readonly HealthCheck[], opts: HealthOptions = {}) {
    for (const c of checks) this.checks.set(c.name, c);
    this.cacheMs = opts.cacheMs ?? 1000;
    this.now = opts.now ?? (() => performance.now());
    this.wallNow = opts.wallNow ?? (() => Date.now());
  }

  /** Adds or replaces a check (by name); forgets the cached result. */
  set(check: HealthCheck): this {
    this.checks.set(check.name, check);
    this.cached = undefined;
    return this;
  }

  names(): string[] {
    return [...this.checks.keys()];
  }

  /** The cached report if fresh, else the round in flight, else a new round. Never rejects. */
  report(): Promise<HealthReport> {
    if (this.cached && this.now() - this.cached.at < this.cacheMs) return Promise.resolve(this.cached.report);
    this.inflight ??= this.round().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async round(): Promise<HealthReport> {
    this.rounds++;
    const list = [...this.checks.values()];
    const settled = await Promise.allSettled(list.map((c) => this.runOne(c)));
    const checks: Record<string, CheckResult> = {};
    settled.forEach((s, i) => {
      const name = list[i]!.name;
      checks[name] =
        s.status === 'fulfilled' ? s.value : { status: 'fail', duration_ms: 0, error: `check crashed: ${describe(s.reason)}` };
    });
    const ok = Object.values(checks).every((c) => c.status === 'ok');
    const report: HealthReport = { status: ok ? 'ok' : 'fail', checked_at: this.wallNow(), checks };
    this.cached = { at: this.now(), report };
    return report;
  }

  private async runOne(check: HealthCheck): Promise<CheckResult> {
    const start = this.now();
    const elapsed = () => Math.round(this.now() - start);
    const ac = new AbortController();
    let run = this.pending.get(check.name);
    if (!run) {
      run = { startedAt: start, outcome: invoke(check.run, ac.signal) };
      const mine = run;
      void mine.outcome.then(() => {
        if (this.pending.get(check.name) === mine) this.pending.delete(check.name);
      });
      this.pending.set(check.name, run);
    }
    const answered = await within(run.outcome, check.timeoutMs);
    if (answered === undefined) {
      ac.abort(new Error(`timed out after ${check.timeoutMs} ms`));
      const since = Math.round(this.now() - run.startedAt);
      const error =
        run.startedAt < start
          ? `no answer within ${check.timeoutMs} ms (still pending from a run started ${since} ms ago)`
          : `no answer within ${check.timeoutMs} ms`;
      return { status: 'timeout', duration_ms: elapsed(), error };
    }
    const first = answered.value;
    if (!first.ok) return { status: 'fail', duration_ms: elapsed(), error: first.error };
    return first.detail ? { status: 'ok', duration_ms: elapsed(), detail: first.detail } : { status: 'ok', duration_ms: elapsed() };
  }
}

/** Calls a check and turns whatever it does (return, throw, reject) into an Outcome; never rejects. */
async function invoke(run: CheckFn, signal: AbortSignal): Promise<Outcome> {
  try {
    const detail = await run(signal);
    return detail ? { ok: true, detail } : { ok: true };
  } catch (err) {
    return { ok: false, error: describe(err) };
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
