/**
 * Whether a request to the platform may start now. Pure: monotonic time and
 * randomness come in as arguments. The same rules as the batched ping's
 * pacer (core/pacer.ts): after a failure, exponential backoff with jitter
 * from `minIntervalMs` capped at `maxIntervalMs` (`UNREACHABLE_RETRY_CAP_MS`
 * while nothing accepts the connection); a 429/503 with Retry-After waits
 * that long, clamped to [minIntervalMs, maxRetryAfterMs], plus a little
 * jitter. Any answer the platform gives as a whole (2xx) opens the gate.
 */
import { UNREACHABLE_RETRY_CAP_MS } from '../../core/pacer.js';

export interface GateOptions {
  minIntervalMs: number;
  maxIntervalMs: number;
  maxRetryAfterMs: number;
}

export type RequestOutcome =
  | { kind: 'answered' }
  | { kind: 'throttled'; retryAfterMs?: number }
  | { kind: 'failed'; unreachable?: boolean };

export class RequestGate {
  private failures = 0;
  private holdUntil = -Infinity;
  private requested = false;

  constructor(private readonly opts: GateOptions) {}

  /** Monotonic time before which no request may start (-Infinity when open). */
  openAt(): number {
    return this.holdUntil;
  }

  /** Whether the hold is the platform's own Retry-After (not our backoff). */
  heldByPlatform(now: number): boolean {
    return this.requested && this.holdUntil > now;
  }

  consecutiveFailures(): number {
    return this.failures;
  }

  finish(now: number, outcome: RequestOutcome, rand: () => number): void {
    if (outcome.kind === 'answered') {
      this.failures = 0;
      this.holdUntil = -Infinity;
      this.requested = false;
      return;
    }
    this.failures++;
    if (outcome.kind === 'throttled' && outcome.retryAfterMs !== undefined) {
      const wait = Math.min(Math.max(outcome.retryAfterMs, this.opts.minIntervalMs), this.opts.maxRetryAfterMs);
      this.holdUntil = Math.max(this.holdUntil, now + wait + rand() * Math.min(1000, wait * 0.1));
      this.requested = true;
      return;
    }
    const cap = outcome.kind === 'failed' && outcome.unreachable
      ? Math.min(this.opts.maxIntervalMs, UNREACHABLE_RETRY_CAP_MS)
      : this.opts.maxIntervalMs;
    const exp = Math.min(cap, this.opts.minIntervalMs * 2 ** Math.min(this.failures - 1, 30));
    // Concurrent requests failing together must not push the hold further than one failure would.
    if (!this.heldByPlatform(now)) this.holdUntil = Math.max(this.holdUntil, now + exp / 2 + (rand() * exp) / 2);
  }
}
