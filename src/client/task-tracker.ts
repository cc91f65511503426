/**
 * Counts a worker's tasks in flight so graceful shutdown can wait for them,
 * without the worker counting by hand. `close()` turns new tasks away, so
 * no task starts once shutdown has begun.
 */

/** Thrown by `run()`/`track()` after `close()`: the task was not started. */
export class TaskTrackerClosedError extends Error {
  constructor() {
    super('the task tracker is closed (shutting down): the task was not started');
    this.name = 'TaskTrackerClosedError';
  }
}

export class TaskTracker {
  private running = 0;
  private finished = 0;
  private failed = 0;
  private closed = false;
  private waiters: Array<() => void> = [];

  /** Tasks started and not yet settled. */
  get inflight(): number {
    return this.running;
  }

  /** Tasks settled so far (fulfilled or rejected). */
  get completed(): number {
    return this.finished;
  }

  /** Of `completed`, how many rejected. */
  get errored(): number {
    return this.failed;
  }

  /** False after `close()`. */
  get accepting(): boolean {
    return !this.closed;
  }

  /**
   * Runs `fn` as a tracked task and returns its result. After `close()` it
   * rejects with `TaskTrackerClosedError` without calling `fn`.
   */
  run<T>(fn: () => T | Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new TaskTrackerClosedError());
    let promise: Promise<T>;
    try {
      promise = Promise.resolve(fn());
    } catch (err) {
      promise = Promise.reject(err);
    }
    return this.follow(promise);
  }

  /** Tracks a task already started elsewhere. */
  track<T>(promise: Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new TaskTrackerClosedError());
    return this.follow(promise);
  }

  /** Turns new tasks away; the ones in flight go on. */
  close(): void {
    this.closed = true;
  }

  /** Resolves when no task is in flight (at once if none is). */
  idle(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private follow<T>(promise: Promise<T>): Promise<T> {
    this.running++;
    const settle = (ok: boolean) => {
      this.running--;
      this.finished++;
      if (!ok) this.failed++;
      if (this.running === 0) {
        const waiters = this.waiters;
        this.waiters = [];
        for (const w of waiters) w();
      }
    };
    // A new promise, so a task's rejection still reaches the caller (or the unhandled-rejection hook).
    return promise.then(
      (value) => {
        settle(true);
        return value;
      },
      (err: unknown) => {
        settle(false);
        throw err;
      },
    );
  }
}
