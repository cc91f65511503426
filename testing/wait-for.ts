import { inspect } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import { within } from '../src/util/deadline.js';

export interface WaitForOptions {
  /** Deadline for the whole wait. Default 5000. */
  timeoutMs?: number;
  /** Pause between two calls of the condition. Default 20. */
  intervalMs?: number;
  /** What was awaited, for the error message. */
  message?: string;
}

type Falsy = undefined | null | false | 0 | '';

export function sleep(ms: number): Promise<void> {
  return delay(ms);
}

/**
 * Calls `fn` until it returns (or resolves to) a truthy value and returns that
 * value. A call that throws counts as "not yet". On the deadline it throws an
 * error naming `message`, the last value and the last error.
 */
export async function waitFor<T>(
  fn: () => T | Falsy | Promise<T | Falsy>,
  { timeoutMs = 5000, intervalMs = 20, message }: WaitForOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: { value: unknown } | undefined;
  let lastError: unknown;
  for (;;) {
    const remaining = deadline - Date.now();
    try {
      // A condition that never settles must not outlive the deadline.
      const outcome = await within(Promise.resolve(fn()), Math.max(remaining, 0));
      if (outcome !== undefined) {
        if (outcome.value) return outcome.value as T;
        last = outcome;
        lastError = undefined;
      }
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await delay(Math.min(intervalMs, Math.max(deadline - Date.now(), 0)));
  }
  const parts = [`waitFor timed out after ${timeoutMs} ms: ${message ?? 'condition never became truthy'}`];
  parts.push(last ? `last value: ${show(last.value)}` : 'the condition never returned a value');
  if (lastError !== undefined) parts.push(`last error: ${show(lastError)}`);
  throw new Error(parts.join('; '));
}

function show(value: unknown): string {
  const text = inspect(value, { depth: 4, breakLength: Infinity });
  return text.length > 1000 ? `${text.slice(0, 1000)}... (${text.length} chars)` : text;
}
