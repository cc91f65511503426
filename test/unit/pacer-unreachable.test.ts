import { describe, expect, it } from 'vitest';
import { Pacer, UNREACHABLE_RETRY_CAP_MS } from '../../src/core/pacer.js';

const opts = { minIntervalMs: 1000, maxIntervalMs: 30_000, urgentFlushMs: 50, requestTimeoutMs: 5000, maxRetryAfterMs: 600_000 };

/** The hold after `failures` consecutive failures of one kind, with the jitter at its top. */
function holdAfter(failures: number, outcome: { kind: 'failed'; unreachable?: boolean }): number {
  const p = new Pacer(opts);
  let now = 0;
  for (let i = 0; i < failures; i++) {
    p.start(now);
    p.finish(now, outcome, () => 0.999);
    now = p.dueAt();
  }
  const last = now;
  p.start(last);
  p.finish(last, outcome, () => 0.999);
  return p.dueAt() - last;
}

describe('retrying a platform that refuses connections', () => {
  it('never waits more than a second between tries, so the catch-up ping follows its return within a second', () => {
    for (const failures of [0, 1, 5, 20, 100]) expect(holdAfter(failures, { kind: 'failed', unreachable: true })).toBeLessThanOrEqual(UNREACHABLE_RETRY_CAP_MS);
  });

  it('still backs off to max_interval_ms when the platform answers and fails (5xx, timeouts)', () => {
    expect(holdAfter(20, { kind: 'failed' })).toBeGreaterThan(15_000);
    expect(holdAfter(20, { kind: 'failed' })).toBeLessThanOrEqual(30_000);
  });

  it('keeps the jitter: the wait lies in [cap/2, cap]', () => {
    const p = new Pacer(opts);
    p.start(0);
    p.finish(0, { kind: 'failed', unreachable: true }, () => 0);
    expect(p.dueAt()).toBe(UNREACHABLE_RETRY_CAP_MS / 2);
  });
});
