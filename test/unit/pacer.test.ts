/**
 * The pacer (docs/PROTOCOL.md 2.4, 2.6 and the answers of section 3), driven by
 * plain monotonic numbers and an injected `rand`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  PROMISE_SLACK_MS, Pacer, UNREACHABLE_RETRY_CAP_MS, parseRetryAfter, type PacerOptions, type PingOutcome,
} from '../../src/core/pacer.js';

const OPTS: PacerOptions = {
  minIntervalMs: 1000,
  maxIntervalMs: 30_000,
  urgentFlushMs: 50,
  requestTimeoutMs: 5000,
  maxRetryAfterMs: 600_000,
};
const pacer = (o: Partial<PacerOptions> = {}) => new Pacer({ ...OPTS, ...o });
const ACCEPTED: PingOutcome = { kind: 'accepted' };
const FAILED: PingOutcome = { kind: 'failed' };
const never = () => {
  throw new Error('rand must not be called');
};
const fixed = (x: number) => () => x;

/** Runs one ping that starts at `at` and ends `tookMs` later with `outcome`; returns its promise. */
function ping(p: Pacer, at: number, outcome: PingOutcome = ACCEPTED, rand: () => number = fixed(0), tookMs = 10): number {
  const promise = p.start(at);
  p.finish(at + tookMs, outcome, rand);
  return promise;
}

/** Sends `n` pings, each as soon as it is due, and returns the gaps between their starts. */
function quietGaps(p: Pacer, first: number, n: number): number[] {
  const starts = [first];
  ping(p, first);
  for (let i = 1; i < n; i++) {
    const at = p.dueAt();
    starts.push(at);
    ping(p, at);
  }
  return starts.slice(1).map((s, i) => s - starts[i]!);
}

describe('Pacer: adaptive interval (2.6)', () => {
  it('sends the first ping at once', () => {
    expect(pacer().dueAt()).toBeLessThanOrEqual(0);
  });

  it('starts the gaps at min_interval_ms after the first ping (the node appearing counts as a change)', () => {
    expect(quietGaps(pacer(), 0, 4)).toEqual([1000, 2000, 4000]);
  });

  it('doubles the gap from min_interval_ms to max_interval_ms while nothing changes', () => {
    const p = pacer();
    p.transition(0);
    expect(p.dueAt()).toBeLessThanOrEqual(25);
    expect(quietGaps(p, 25, 8)).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    expect(p.currentIntervalMs()).toBe(30_000);
  });

  it('does not grow the gap after a ping that failed', () => {
    const p = pacer();
    p.transition(0);
    ping(p, 25);
    ping(p, 1025, FAILED);
    expect(p.currentIntervalMs()).toBe(1000);
    ping(p, p.dueAt(), FAILED);
    expect(p.currentIntervalMs()).toBe(1000);
  });

  it('resets the gap on a transition and makes one ping due within urgent_flush_ms for the whole burst', () => {
    const p = pacer();
    p.transition(0);
    quietGaps(p, 25, 8);
    expect(p.currentIntervalMs()).toBe(30_000);
    const now = p.dueAt() - 12_345;
    p.transition(now);
    p.transition(now + 10);
    expect(p.dueAt()).toBe(now + 25);
    expect(quietGaps(p, now + 25, 3)).toEqual([1000, 2000]);
  });

  it('lets a burst of transitions within the window share one ping', () => {
    const p = pacer();
    ping(p, 0);
    p.transition(500);
    p.transition(510);
    p.transition(524);
    expect(p.dueAt()).toBe(525);
    ping(p, 525);
    expect(p.dueAt()).toBe(1525);
    p.transition(600);
    expect(p.dueAt()).toBe(625);
  });

  it('sends a transition that happens during a ping right after that ping', () => {
    const p = pacer();
    p.start(0);
    p.transition(10);
    expect(p.dueAt()).toBe(Infinity);
    p.finish(2000, ACCEPTED, never);
    expect(p.dueAt()).toBe(35);
  });

  it('applies next_interval_ms as a floor on the quiet gap, capped at max_interval_ms', () => {
    const p = pacer();
    p.transition(0);
    ping(p, 25, { kind: 'accepted', nextIntervalMs: 8000 });
    const at = p.dueAt();
    ping(p, at);
    expect(p.dueAt() - at).toBe(8000);
    expect(p.currentIntervalMs()).toBe(8000);

    const q = pacer();
    ping(q, 0, { kind: 'accepted', nextIntervalMs: 3_600_000 });
    ping(q, q.dueAt());
    expect(q.currentIntervalMs()).toBe(30_000);
    expect(quietGaps(q, q.dueAt(), 3)).toEqual([30_000, 30_000]);
  });

  it('still sends urgent pings under a next_interval_ms floor', () => {
    const p = pacer();
    ping(p, 0, { kind: 'accepted', nextIntervalMs: 20_000 });
    p.transition(100);
    expect(p.dueAt()).toBe(125);
  });

  it('keeps the promise of the ping that carried a new next_interval_ms floor', () => {
    const p = pacer();
    const promise = ping(p, 0, { kind: 'accepted', nextIntervalMs: 20_000 });
    expect(promise).toBe(5000 + PROMISE_SLACK_MS);
    expect(p.dueAt()).toBeLessThanOrEqual(promise - PROMISE_SLACK_MS);
    const next = ping(p, p.dueAt());
    expect(next).toBe(20_000 + PROMISE_SLACK_MS);
  });

  it('promises the next ping within the request timeout at least', () => {
    const p = pacer({ requestTimeoutMs: 5000 });
    p.transition(0);
    expect(p.start(25)).toBe(5000 + PROMISE_SLACK_MS);
    p.finish(30, ACCEPTED, never);
    for (let i = 0; i < 6; i++) ping(p, p.dueAt());
    expect(p.start(p.dueAt())).toBe(30_000 + PROMISE_SLACK_MS);
  });
});

describe('Pacer: failures and Retry-After (3)', () => {
  it('backs off exponentially with jitter, capped at max_interval_ms', () => {
    for (const [r, expected] of [
      [0, [500, 1000, 2000, 4000, 8000, 15_000, 15_000]],
      [0.5, [750, 1500, 3000, 6000, 12_000, 22_500, 22_500]],
      [0.999, [999.5, 1999, 3998, 7996, 15_992, 29_985, 29_985]],
    ] as const) {
      const p = pacer();
      const waits: number[] = [];
      let now = 0;
      for (let i = 0; i < 7; i++) {
        ping(p, now, FAILED, fixed(r), 0);
        waits.push(p.dueAt() - now);
        now = p.dueAt();
      }
      expect(waits).toEqual(expected);
      expect(p.consecutiveFailures()).toBe(7);
    }
  });

  it('caps the backoff at UNREACHABLE_RETRY_CAP_MS while nothing accepts the connection', () => {
    const p = pacer({ minIntervalMs: 200 });
    const waits: number[] = [];
    let now = 0;
    for (let i = 0; i < 6; i++) {
      ping(p, now, { kind: 'failed', unreachable: true }, fixed(0.5), 0);
      waits.push(p.dueAt() - now);
      now = p.dueAt();
    }
    expect(UNREACHABLE_RETRY_CAP_MS).toBe(1000);
    expect(waits).toEqual([150, 300, 600, 750, 750, 750]);
    // A failure that reached the platform backs off to max_interval_ms again.
    ping(p, now, FAILED, fixed(0.5), 0);
    expect(p.dueAt() - now).toBe(0.75 * Math.min(30_000, 200 * 2 ** 6));
  });

  it('treats a rejected ping and a throttle without Retry-After like a failure', () => {
    const p = pacer();
    ping(p, 0, { kind: 'rejected' }, fixed(0), 0);
    expect(p.dueAt()).toBe(500);
    ping(p, 500, { kind: 'throttled' }, fixed(0), 0);
    expect(p.dueAt()).toBe(1500);
    expect(p.heldUntil()).toBe(-Infinity);
  });

  it('ends the backoff after an accepted ping', () => {
    const p = pacer();
    ping(p, 0, FAILED, fixed(0), 0);
    ping(p, 500, FAILED, fixed(0), 0);
    ping(p, 1500, ACCEPTED);
    expect(p.consecutiveFailures()).toBe(0);
    const at = p.dueAt();
    ping(p, at, FAILED, fixed(0), 0);
    expect(p.dueAt() - at).toBe(500);
    expect(p.consecutiveFailures()).toBe(1);
  });

  it('honours Retry-After, with at most 10% (and 1 s) of jitter on top', () => {
    const p = pacer();
    ping(p, 0, { kind: 'throttled', retryAfterMs: 7000 }, fixed(0), 0);
    expect(p.dueAt()).toBe(7000);
    expect(p.heldUntil()).toBe(7000);
    ping(p, 7000, { kind: 'throttled', retryAfterMs: 7000 }, fixed(0.5), 0);
    expect(p.dueAt()).toBe(14_000 + 350);
    ping(p, 15_000, { kind: 'throttled', retryAfterMs: 120_000 }, fixed(0.5), 0);
    expect(p.dueAt()).toBe(15_000 + 120_000 + 500);
  });

  it('clamps Retry-After to max_retry_after_ms, and a zero or negative one up to min_interval_ms (no tight loop)', () => {
    const p = pacer({ maxRetryAfterMs: 60_000, minIntervalMs: 1000 });
    ping(p, 0, { kind: 'throttled', retryAfterMs: 86_400_000 }, fixed(0), 0);
    expect(p.dueAt()).toBe(60_000);
    ping(p, 60_000, { kind: 'throttled', retryAfterMs: -5000 }, fixed(0), 0);
    expect(p.dueAt()).toBe(61_000);
    ping(p, 61_000, { kind: 'throttled', retryAfterMs: 0 }, fixed(0), 0);
    expect(p.dueAt()).toBe(62_000);
  });

  it('lets Retry-After and backoff win over urgency', () => {
    const p = pacer();
    ping(p, 0, { kind: 'throttled', retryAfterMs: 10_000 }, fixed(0), 0);
    p.transition(100);
    expect(p.dueAt()).toBe(10_000);
    ping(p, 10_000, FAILED, fixed(0), 0);
    p.transition(10_001);
    expect(p.dueAt()).toBe(11_000);
    expect(p.heldUntil()).toBe(-Infinity);
  });

  it('still owes the transitions a failed ping carried', () => {
    const p = pacer();
    ping(p, 0);
    p.transition(5000);
    ping(p, 5025, FAILED, fixed(0), 0);
    ping(p, p.dueAt(), ACCEPTED);
    // The retry carried the change: the gap restarts from min_interval_ms.
    expect(p.currentIntervalMs()).toBe(1000);
  });

  it('resends a ping refused as too large (413) after min_interval_ms, not at once', () => {
    const p = pacer();
    ping(p, 0);
    p.start(2000);
    p.resize(2010);
    expect(p.dueAt()).toBe(3010);
    // A transition does not cut the wait short: a platform that refuses sizes is not hammered.
    p.transition(2020);
    expect(p.dueAt()).toBe(3010);
  });

  it('keeps the promise of every accepted ping, and the wait after every failed one, over random sequences', () => {
    type Step =
      | { kind: 'transition'; after: number }
      | { kind: 'ping'; took: number; outcome: PingOutcome; transitionsDuring: number[]; rand: number }
      | { kind: 'resize'; took: number };
    const outcome = fc.oneof(
      fc.constant<PingOutcome>({ kind: 'accepted' }),
      fc.integer({ min: 0, max: 100_000 }).map((n): PingOutcome => ({ kind: 'accepted', nextIntervalMs: n })),
      fc.option(fc.integer({ min: -1000, max: 700_000 }), { nil: undefined }).map(
        (ms): PingOutcome => (ms === undefined ? { kind: 'throttled' } : { kind: 'throttled', retryAfterMs: ms }),
      ),
      fc.constant<PingOutcome>({ kind: 'failed' }),
      fc.constant<PingOutcome>({ kind: 'failed', unreachable: true }),
      fc.constant<PingOutcome>({ kind: 'rejected' }),
    );
    const step: fc.Arbitrary<Step> = fc.oneof(
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('transition' as const), after: fc.integer({ min: 0, max: 40_000 }) }) },
      {
        weight: 5,
        arbitrary: fc.record({
          kind: fc.constant('ping' as const),
          took: fc.integer({ min: 0, max: 10_000 }),
          outcome,
          transitionsDuring: fc.array(fc.integer({ min: 0, max: 10_000 }), { maxLength: 3 }),
          rand: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('resize' as const), took: fc.integer({ min: 0, max: 10_000 }) }) },
    );
    const options = fc.record({
      minIntervalMs: fc.integer({ min: 100, max: 5000 }),
      extra: fc.integer({ min: 0, max: 60_000 }),
      urgentFlushMs: fc.integer({ min: 0, max: 500 }),
      requestTimeoutMs: fc.integer({ min: 100, max: 10_000 }),
    });
    fc.assert(
      fc.property(options, fc.array(step, { maxLength: 60 }), (o, steps) => {
        const p0: PacerOptions = {
          minIntervalMs: o.minIntervalMs,
          maxIntervalMs: o.minIntervalMs + o.extra,
          urgentFlushMs: o.urgentFlushMs,
          requestTimeoutMs: o.requestTimeoutMs,
          maxRetryAfterMs: 600_000,
        };
        const p = new Pacer(p0);
        let now = 0;
        /** Latest start allowed by the last accepted ping's promise (Infinity after a failure). */
        let promisedBy = Infinity;
        /** Where a failure put the next try: transitions must not move it (a daemon told to wait, waits). */
        let heldTill: number | undefined;
        const startPing = (): number => {
          const at = Math.max(now, p.dueAt());
          expect(at).toBeLessThanOrEqual(promisedBy);
          now = at;
          return p.start(at);
        };
        for (const s of steps) {
          if (s.kind === 'transition') {
            // Only if it happens before the ping that is due anyway.
            const at = now + s.after;
            if (at < p.dueAt()) {
              now = at;
              p.transition(at);
              if (heldTill !== undefined) expect(p.dueAt()).toBe(heldTill);
            }
            continue;
          }
          const promise = startPing();
          const begun = now;
          const took = Math.min(s.took, p0.requestTimeoutMs);
          expect(promise).toBeGreaterThan(0);
          expect(Number.isInteger(promise)).toBe(true);
          if (s.kind === 'resize') {
            now = begun + took;
            p.resize(now);
            promisedBy = Infinity;
            // The resend is paced: held min_interval_ms, and transitions do not move it.
            heldTill = p.dueAt();
            expect(heldTill).toBe(now + p0.minIntervalMs);
            continue;
          }
          for (const d of [...s.transitionsDuring].sort((a, b) => a - b)) if (d <= took) p.transition(begun + d);
          now = begun + took;
          p.finish(now, s.outcome, () => s.rand);
          heldTill = s.outcome.kind === 'accepted' ? undefined : p.dueAt();
          if (heldTill !== undefined) expect(heldTill).toBeGreaterThanOrEqual(now);
          // The slack is for timer lateness: the pacer itself must be due inside the bare promise.
          promisedBy = s.outcome.kind === 'accepted' ? begun + (promise - PROMISE_SLACK_MS) : Infinity;
        }
        startPing();
      }),
      { numRuns: 300 },
    );
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');

  it('reads delta-seconds', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 3 ', now)).toBe(3000);
    expect(parseRetryAfter('0', now)).toBe(0);
  });

  it('reads an HTTP date in the future as the time left until it', () => {
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wednesday, 21-Oct-15 07:29:00 GMT', now)).toBe(60_000);
    // asctime carries no zone: HTTP dates are always GMT, whatever the local zone.
    expect(parseRetryAfter('Wed Oct 21 07:28:05 2015', now)).toBe(5000);
  });

  it('reads an HTTP date in the past as no wait', () => {
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:27:00 GMT', now)).toBe(0);
  });

  it('returns undefined when the header is absent or unreadable', () => {
    for (const v of [null, undefined, '', '   ', 'soon', '-5', '1.5', '12abc', 'abc 12', 'Wed 12', '1e3', '0x10', '2015-10-21T07:28:30Z']) {
      expect(parseRetryAfter(v, now), String(v)).toBeUndefined();
    }
  });
});
