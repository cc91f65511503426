import { describe, expect, it } from 'vitest';
import { RequestGate } from '../../../src/daemon/opencti/request-gate.js';

const opts = { minIntervalMs: 1000, maxIntervalMs: 30_000, maxRetryAfterMs: 600_000 };
const half = () => 0.5;

describe('the request gate (same rules as the batched ping)', () => {
  it('is open until a request fails, then backs off exponentially up to max_interval_ms', () => {
    const g = new RequestGate(opts);
    expect(g.openAt()).toBe(-Infinity);
    const holds: number[] = [];
    for (let i = 0; i < 8; i++) {
      g.finish(0, { kind: 'failed' }, half);
      holds.push(g.openAt());
    }
    expect(holds.slice(0, 3)).toEqual([750, 1500, 3000]);
    expect(Math.max(...holds)).toBeLessThanOrEqual(30_000);
    g.finish(10, { kind: 'answered' }, half);
    expect(g.openAt()).toBe(-Infinity);
  });

  it('waits for Retry-After, clamped to [min_interval_ms, max_retry_after_ms]', () => {
    const g = new RequestGate(opts);
    g.finish(0, { kind: 'throttled', retryAfterMs: 0 }, () => 0);
    expect(g.openAt()).toBe(1000);
    g.finish(0, { kind: 'throttled', retryAfterMs: 7_000 }, () => 0);
    expect(g.openAt()).toBe(7_000);
    expect(g.heldByPlatform(100)).toBe(true);
    g.finish(0, { kind: 'throttled', retryAfterMs: 86_400_000 }, () => 0);
    expect(g.openAt()).toBe(600_000);
  });

  it('retries a refused connection within a second', () => {
    const g = new RequestGate(opts);
    for (let i = 0; i < 10; i++) g.finish(0, { kind: 'failed', unreachable: true }, () => 0.99);
    expect(g.openAt()).toBeLessThanOrEqual(1000);
  });
});
