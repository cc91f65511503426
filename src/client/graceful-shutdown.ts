/**
 * A worker's graceful shutdown, in the fixed order of nats.js `drain()`: stop
 * taking input, announce `draining`, let the tasks in flight finish (up to a
 * deadline), run cleanups in reverse order of registration, announce
 * `stopped`. Two deadlines: the drain deadline abandons tasks still running;
 * the hard deadline (or a second signal) exits non-zero at once.
 *
 * This is the one place a worker's signals are handled; `install()` (or
 * `installGracefulShutdown`) wires SIGTERM/SIGINT to `shutdown()`.
 */
import type { LeaveOptions } from './heartbeat-client.js';
import type { LeaveResult } from './leave-request.js';
import { errorText, silentLogger, type ClientLogger } from './logger.js';
import { systemScheduler, type Scheduler } from './scheduler.js';
import type { TaskTracker } from './task-tracker.js';
import type { LeavePhase } from '../protocol/schemas.js';
import { within } from '../util/deadline.js';
import { StepRunner, type StepResult } from '../util/steps.js';

/** running -> stopping -> stopped, or -> forced (second signal, hard deadline). Logged by `state`'s setter. */
export type ShutdownState = 'running' | 'stopping' | 'stopped' | 'forced';

/** What the shutdown needs from the heartbeat client (a `HeartbeatClient` fits). */
export interface ShutdownClient {
  leave(phase: LeavePhase, opts?: LeaveOptions): Promise<LeaveResult>;
  close?(): Promise<void>;
}

/** Where signals come from (`process` by default; tests pass an EventEmitter). */
export interface SignalSource {
  on(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  removeListener(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
}

export interface GracefulShutdownOptions {
  client: ShutdownClient;
  /** Stop taking new tasks (close a consumer, stop a poll loop). Runs first. */
  stopAccepting?: () => void | Promise<void>;
  /** Tasks in flight, counted for you: closed at once, then waited for. */
  tasks?: TaskTracker;
  /** Or: how many tasks are in flight, if the worker counts them itself (polled). */
  inflight?: () => number;
  /** How long tasks in flight may take to finish, from the start of shutdown. Default 30000. */
  drainTimeoutMs?: number;
  /** After this, from the start of shutdown, the process exits with code 1. Default drainTimeoutMs + 10000. */
  hardTimeoutMs?: number;
  /** Bound on each leave announcement. Default 2000. */
  leaveTimeoutMs?: number;
  /** Default ['SIGTERM', 'SIGINT']. */
  signals?: NodeJS.Signals[];
  /** Default `process.exit`. Called with 0 after a signal-started shutdown completes, 1 when forced. */
  exit?: (code: number) => void;
  /** Called on every signal received, before anything else. */
  onSignal?: (signal: NodeJS.Signals) => void;
  /** Called with the summary of a signal-started shutdown, just before `exit(0)`. */
  onComplete?: (summary: ShutdownSummary) => void;
  logger?: ClientLogger;
  scheduler?: Scheduler;
  signalSource?: SignalSource;
}

/** One step of the shutdown: its name, how long it took, and why it failed if it did. */
export type ShutdownStep = StepResult;

export interface ShutdownSummary {
  reason: string;
  /** Tasks that finished during the shutdown. */
  tasksFinished: number;
  /** Tasks still running when the drain deadline passed. */
  tasksAbandoned: number;
  steps: ShutdownStep[];
  totalMs: number;
}

interface Cleanup {
  name: string;
  fn: () => unknown;
  timeoutMs?: number;
}

const INFLIGHT_POLL_MS = 50;

export class GracefulShutdown {
  private readonly opts: GracefulShutdownOptions;
  private readonly drainTimeoutMs: number;
  private readonly hardTimeoutMs: number;
  private readonly scheduler: Scheduler;
  private readonly log: ClientLogger;
  private readonly exit: (code: number) => void;
  private readonly abort = new AbortController();
  private readonly cleanups: Cleanup[] = [];
  private _state: ShutdownState = 'running';
  private running: Promise<ShutdownSummary> | undefined;
  private installed: NodeJS.Signals[] = [];

  constructor(opts: GracefulShutdownOptions) {
    this.opts = opts;
    this.drainTimeoutMs = opts.drainTimeoutMs ?? 30_000;
    this.hardTimeoutMs = opts.hardTimeoutMs ?? this.drainTimeoutMs + 10_000;
    if (!(this.drainTimeoutMs >= 0)) throw new RangeError(`drainTimeoutMs must be >= 0, got ${this.drainTimeoutMs}`);
    if (!(this.hardTimeoutMs > this.drainTimeoutMs)) {
      throw new RangeError(`hardTimeoutMs (${this.hardTimeoutMs}) must be greater than drainTimeoutMs (${this.drainTimeoutMs})`);
    }
    this.scheduler = opts.scheduler ?? systemScheduler;
    this.log = opts.logger ?? silentLogger;
    this.exit = opts.exit ?? ((code) => process.exit(code));
  }

  get state(): ShutdownState {
    return this._state;
  }

  private set state(next: ShutdownState) {
    this.log.info({ from: this._state, to: next }, `shutdown ${next}`);
    this._state = next;
  }

  /** True from the moment shutdown begins: a task loop's condition. */
  get stopping(): boolean {
    return this._state !== 'running';
  }

  /** Aborted when shutdown begins: pass it to whatever waits for the next task. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /**
   * Registers a cleanup (close a database pool, flush a queue client). They
   * run after the tasks, last registered first, each in its own try/catch.
   */
  addCleanup(name: string, fn: () => unknown, opts: { timeoutMs?: number } = {}): this {
    if (this.stopping) this.log.warn({ cleanup: name }, 'cleanup registered during shutdown; it may not run');
    this.cleanups.push({ name, fn, timeoutMs: opts.timeoutMs });
    return this;
  }

  /** Handles the signals: the first shuts down and exits 0, a second one exits 1. Idempotent. */
  install(): this {
    if (this.installed.length > 0) return this;
    const source = this.opts.signalSource ?? process;
    this.installed = [...(this.opts.signals ?? ['SIGTERM', 'SIGINT'])];
    for (const s of this.installed) source.on(s, this.onSignal);
    return this;
  }

  uninstall(): void {
    const source = this.opts.signalSource ?? process;
    for (const s of this.installed) source.removeListener(s, this.onSignal);
    this.installed = [];
  }

  /** Runs the shutdown once; a second call returns the same promise. Never rejects. */
  shutdown(reason = 'shutdown'): Promise<ShutdownSummary> {
    this.running ??= this.run(reason);
    return this.running;
  }

  private readonly onSignal = (signal: NodeJS.Signals): void => {
    try {
      this.opts.onSignal?.(signal);
    } catch (err) {
      this.log.warn({ signal, err: errorText(err) }, 'onSignal hook threw');
    }
    if (this.running) {
      this.force(`second signal (${signal}) during shutdown`);
      return;
    }
    this.log.info({ signal }, 'signal received; shutting down gracefully (send it again to force)');
    void this.shutdown(signal).then((summary) => {
      if (this._state === 'forced') return;
      try {
        this.opts.onComplete?.(summary);
      } catch (err) {
        this.log.warn({ err: errorText(err) }, 'onComplete hook threw');
      }
      this.exit(0);
    });
  };

  private force(why: string): void {
    if (this._state === 'forced') return;
    this.state = 'forced';
    this.log.warn({ why }, 'forcing exit');
    this.exit(1);
  }

  private async run(reason: string): Promise<ShutdownSummary> {
    const started = this.scheduler.now();
    this.state = 'stopping';
    this.abort.abort(reason);
    this.opts.tasks?.close();
    const hard = this.scheduler.setTimeout(
      () => this.force(`hard deadline of ${this.hardTimeoutMs} ms passed`),
      this.hardTimeoutMs,
      { unref: true },
    );
    // On the injected scheduler, so fake-clock tests drive step timeouts too.
    const runner = new StepRunner({
      now: () => this.scheduler.now(),
      settleWithin: (p, ms) => this.settlesWithin(p, ms),
      onStep: (s) => {
        if (s.ok) this.log.debug({ step: s.name, ms: s.ms }, 'shutdown step done');
        else this.log.warn({ step: s.name, ms: s.ms, error: s.error }, 'shutdown step failed; going on');
      },
    });
    // Called synchronously: the first step takes effect before shutdown() returns.
    const step = async (name: string, fn: () => unknown, timeoutMs?: number): Promise<void> => {
      await runner.run(name, fn, timeoutMs);
    };
    const announce = async (phase: LeavePhase) => {
      const drainTimeoutMs = Math.max(0, started + this.hardTimeoutMs - this.scheduler.now());
      const r = await this.opts.client.leave(phase, { reason, drainTimeoutMs, timeoutMs: this.opts.leaveTimeoutMs });
      if (!r.ok) throw new Error(r.error);
    };

    const tracker = this.opts.tasks;
    const completedBefore = tracker?.completed ?? 0;
    const countedBefore = this.counted();
    await step('stop accepting', () => this.opts.stopAccepting?.());
    await step('announce draining', () => announce('draining'));
    let abandoned = 0;
    let finished = 0;
    await step('wait for tasks', async () => {
      abandoned = await this.waitForTasks(started + this.drainTimeoutMs);
      // A tracker knows what completed; a counting function only what is gone.
      finished = (tracker ? tracker.completed - completedBefore : 0) + Math.max(0, countedBefore - this.counted());
      if (abandoned > 0) throw new Error(`${abandoned} task(s) still running after ${this.drainTimeoutMs} ms`);
    });
    for (const c of [...this.cleanups].reverse()) await step(`cleanup: ${c.name}`, c.fn, c.timeoutMs);
    await step('announce stopped', () => announce('stopped'));
    if (this.opts.client.close) await step('close heartbeat client', () => this.opts.client.close?.());
    this.scheduler.clearTimeout(hard);

    const summary: ShutdownSummary = {
      reason,
      tasksFinished: finished,
      tasksAbandoned: abandoned,
      steps: runner.results,
      totalMs: this.scheduler.now() - started,
    };
    if (this._state === 'stopping') this.state = 'stopped';
    this.log.info({ ...summary }, 'shutdown complete');
    return summary;
  }

  private inflight(): number {
    return (this.opts.tasks?.inflight ?? 0) + this.counted();
  }

  /** The worker's own count; a callback that throws counts as nothing in flight. */
  private counted(): number {
    try {
      const n = this.opts.inflight?.() ?? 0;
      return Number.isFinite(n) && n > 0 ? n : 0;
    } catch (err) {
      this.log.warn({ err: errorText(err) }, 'inflight callback threw; counting 0');
      return 0;
    }
  }

  /** Waits until nothing is in flight or `deadline`; returns how many are still running. */
  private async waitForTasks(deadline: number): Promise<number> {
    for (let n = this.inflight(); n > 0; n = this.inflight()) {
      const remaining = deadline - this.scheduler.now();
      if (remaining <= 0) return n;
      if (this.opts.inflight) {
        // A counting function has to be polled.
        await this.settlesWithin(new Promise<never>(() => undefined), Math.min(INFLIGHT_POLL_MS, remaining));
      } else if (this.opts.tasks) {
        await this.settlesWithin(this.opts.tasks.idle(), remaining);
      }
    }
    return 0;
  }

  /** True when `p` settles within `ms` (its rejection is rethrown), false when the time runs out first. */
  private async settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
    return (await within(p, ms, this.scheduler)) !== undefined;
  }
}

/** Creates a `GracefulShutdown` and installs its signal handlers. */
export function installGracefulShutdown(opts: GracefulShutdownOptions): GracefulShutdown {
  return new GracefulShutdown(opts).install();
}
