/**
 * When to ping. Pure: time (monotonic ms) and randomness come in as arguments.
 *
 * - Quiet: the gap doubles from `minIntervalMs` to `maxIntervalMs` after each
 *   accepted ping that carried no change.
 * - A transition resets the gap and asks for a ping within `urgentFlushMs`;
 *   transitions inside that window share it.
 * - The platform may raise the gap with `next_interval_ms` (a floor, capped
 *   at `maxIntervalMs`); urgent pings still go out, since they carry the
 *   state changes the platform most needs.
 * - After a failure the next try waits for backoff (exponential, jittered,
 *   capped at `maxIntervalMs`) or the platform's Retry-After (clamped,
 *   plus a little jitter so nodes told the same time do not return in step).
 *   Backoff and Retry-After win over urgency: a daemon told to wait, waits.
 * - One ping at a time; a transition during a ping is sent right after it.
 */
export interface PacerOptions {
  minIntervalMs: number;
  maxIntervalMs: number;
  urgentFlushMs: number;
  requestTimeoutMs: number;
  maxRetryAfterMs: number;
}

export type PingOutcome =
  | { kind: 'accepted'; nextIntervalMs?: number }
  | { kind: 'throttled'; retryAfterMs?: number }
  | { kind: 'rejected' }
  /** `unreachable`: nothing accepted the connection, so the request reached no application. */
  | { kind: 'failed'; unreachable?: boolean };

/**
 * Backoff cap while the platform refuses connections. Such a try costs a SYN
 * and a RST, no request reaches an application, so trying about once a second
 * is nearly free, and it is what lets the catch-up ping go out within a second
 * of the platform's return. Failures that do reach it (5xx, timeouts) back off
 * to `maxIntervalMs`; 429/503 wait for Retry-After.
 */
export const UNREACHABLE_RETRY_CAP_MS = 1000;

/** Slack added to a promise for timer lateness. */
export const PROMISE_SLACK_MS = 250;

export class Pacer {
  private gapMs: number;
  private floorMs = 0;
  private failures = 0;
  private holdUntil = -Infinity;
  /** Whether `holdUntil` is the platform's own Retry-After (not our backoff). */
  private holdRequested = false;
  private urgentAt = Infinity;
  private lastStart = -Infinity;
  /** When the last ping promised the next one by (without the slack). */
  private promisedBy = Infinity;
  /** True at start: the daemon's first ping (its node appearing) is a change, so the gap starts at the minimum. */
  private changed = true;
  private sentChanged = false;
  private inFlight = false;

  constructor(private readonly opts: PacerOptions) {
    this.gapMs = opts.minIntervalMs;
  }

  /** A worker appeared, started draining, stopped, went lost or came back. */
  transition(now: number): void {
    // The gap is reset by the ping that carries the change (start()): reset here, it
    // would make the ping due at once when the last one is older than min_interval_ms,
    // and the rest of the burst would need a second ping.
    this.changed = true;
    // Half the window: the ping goes out well inside urgent_flush_ms, and a burst still shares it.
    const at = now + Math.floor(this.opts.urgentFlushMs / 2);
    if (at < this.urgentAt) this.urgentAt = at;
  }

  /** Monotonic time the next ping should start; Infinity while one is in flight. */
  dueAt(): number {
    if (this.inFlight) return Infinity;
    if (this.failures > 0) return this.holdUntil;
    // A floor raised by the last answer applies from the next promise on: this one is kept.
    const quietAt = Math.min(this.lastStart + this.quietGap(this.gapMs), this.promisedBy);
    return Math.max(Math.min(quietAt, this.urgentAt), this.holdUntil);
  }

  /** A ping starts now; returns the `next_ping_within_ms` it may promise. */
  start(now: number): number {
    this.inFlight = true;
    this.lastStart = now;
    this.urgentAt = Infinity;
    this.sentChanged = this.changed;
    this.changed = false;
    if (this.sentChanged) this.gapMs = this.opts.minIntervalMs;
    const next = this.sentChanged ? this.gapMs : Math.min(this.gapMs * 2, this.opts.maxIntervalMs);
    const within = Math.max(this.quietGap(next), this.opts.requestTimeoutMs);
    this.promisedBy = now + within;
    return within + PROMISE_SLACK_MS;
  }

  /** The ping (all its parts) ended with `outcome`; `rand` returns [0, 1). */
  finish(now: number, outcome: PingOutcome, rand: () => number): void {
    this.inFlight = false;
    if (outcome.kind === 'accepted') {
      this.failures = 0;
      this.holdUntil = -Infinity;
      if (!this.sentChanged && !this.changed) this.gapMs = Math.min(this.gapMs * 2, this.opts.maxIntervalMs);
      if (outcome.nextIntervalMs !== undefined) this.floorMs = Math.min(outcome.nextIntervalMs, this.opts.maxIntervalMs);
      return;
    }
    // The changes this ping carried were not delivered: they are still owed.
    if (this.sentChanged) this.changed = true;
    this.failures++;
    if (outcome.kind === 'throttled' && outcome.retryAfterMs !== undefined) {
      // "Retry-After: 0" (or a past date) repeated by a struggling platform must not become a tight loop.
      const wait = Math.min(Math.max(outcome.retryAfterMs, this.opts.minIntervalMs), this.opts.maxRetryAfterMs);
      this.holdUntil = now + wait + rand() * Math.min(1000, wait * 0.1);
      this.holdRequested = true;
      return;
    }
    this.holdRequested = false;
    const cap = outcome.kind === 'failed' && outcome.unreachable
      ? Math.min(this.opts.maxIntervalMs, UNREACHABLE_RETRY_CAP_MS)
      : this.opts.maxIntervalMs;
    const exp = Math.min(cap, this.opts.minIntervalMs * 2 ** Math.min(this.failures - 1, 30));
    this.holdUntil = now + exp / 2 + (rand() * exp) / 2;
  }

  /**
   * The platform refused a part as too large: resend, rebuilt with smaller
   * parts, after `minIntervalMs` (a platform that keeps refusing is paced,
   * never hit in a tight loop; a transition does not cut the wait short).
   */
  resize(now: number): void {
    this.inFlight = false;
    if (this.sentChanged) this.changed = true;
    this.urgentAt = now;
    this.holdUntil = now + this.opts.minIntervalMs;
  }

  /** The gap the next quiet ping would wait, for metrics and status. */
  currentIntervalMs(): number {
    return this.quietGap(this.gapMs);
  }

  consecutiveFailures(): number {
    return this.failures;
  }

  /** Monotonic time before which the platform asked (Retry-After) not to be pinged, or -Infinity. */
  heldUntil(): number {
    return this.failures > 0 && this.holdRequested ? this.holdUntil : -Infinity;
  }

  private quietGap(gap: number): number {
    return Math.min(Math.max(gap, this.floorMs), this.opts.maxIntervalMs);
  }
}

/** The three HTTP-date forms of RFC 9110 5.6.7: IMF-fixdate, RFC 850 and asctime. */
const HTTP_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? [\w -]+ \d{2}:\d{2}:\d{2}( \d{4})?( GMT)?$/;

/** Retry-After as delta-seconds or an HTTP date, in ms from `nowWall`; undefined if absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, nowWall: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // Date.parse alone reads "-5", "1.5" or "abc 12" as dates in 2001: a zero wait, a retry storm.
  if (!HTTP_DATE.test(v)) return undefined;
  // HTTP dates are GMT; asctime() carries no zone and would be read as local time.
  const date = Date.parse(/GMT$/.test(v) ? v : `${v} GMT`);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowWall);
}
