/**
 * Promise-versus-timer races, written once. The timer is always cleared, so a
 * settled race leaves nothing behind that keeps the process alive.
 */

/** The timers a race runs on: node's by default; the worker client passes its injectable scheduler. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const nodeTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** `{ value }` when `promise` resolves within `ms`, `undefined` when the time runs out first; rejects as `promise` does. */
export function within<V>(promise: Promise<V>, ms: number, timers: Timers = nodeTimers): Promise<{ value: V } | undefined> {
  let timer: unknown;
  const expired = new Promise<undefined>((resolve) => {
    timer = timers.setTimeout(() => resolve(undefined), Math.max(0, ms));
  });
  return Promise.race([promise.then((value) => ({ value })), expired]).finally(() => timers.clearTimeout(timer));
}

/**
 * Waits for `promise` to settle or for `ms`, whichever comes first; never
 * rejects. Resolves `true` when it settled in time (resolved or rejected).
 */
export async function settleWithin(promise: Promise<unknown>, ms: number, timers: Timers = nodeTimers): Promise<boolean> {
  const settled = promise.then(
    () => true,
    () => true,
  );
  return (await within(settled, ms, timers)) !== undefined;
}

/** Error thrown by {@link orTimeout} when its promise takes too long. */
export class DeadlineError extends Error {
  constructor(
    readonly what: string,
    readonly ms: number,
  ) {
    super(`${what} did not finish within ${ms} ms`);
    this.name = 'DeadlineError';
  }
}

/** Resolves as `promise` does, or rejects with a {@link DeadlineError} naming `what` after `ms`. */
export async function orTimeout<V>(promise: Promise<V>, ms: number, what: string): Promise<V> {
  const r = await within(promise, ms);
  if (r === undefined) throw new DeadlineError(what, ms);
  return r.value;
}
