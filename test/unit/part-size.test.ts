/** What a 413 does to the part size, the lease, and a single refused entry. */
import { describe, expect, it } from 'vitest';
import { leaseMs, PartSize, RefusedEntries } from '../../src/core/part-size.js';
import type { SentRecord } from '../../src/core/registry.js';
import type { PingWorker } from '../../src/protocol/schemas.js';

const MIN = 60_000;

describe('PartSize', () => {
  it('halves the refused part, not the configured maximum', () => {
    const p = new PartSize({ max: 1000, regrowAfterMs: 5 * MIN });
    expect(p.tooLarge(40, 0)).toEqual({ kind: 'split', size: 20 });
    expect(p.current).toBe(20);
  });

  it('never halves for an empty ping: a 413 without entries is not about size', () => {
    const p = new PartSize({ max: 1000, regrowAfterMs: 5 * MIN });
    expect(p.tooLarge(0, 0)).toEqual({ kind: 'not-size' });
    expect(p.current).toBe(1000);
  });

  it('calls a 413 on a single entry a rejected entry and keeps the size', () => {
    const p = new PartSize({ max: 8, regrowAfterMs: 5 * MIN });
    p.tooLarge(8, 0);
    expect(p.tooLarge(1, 1, 5000)).toEqual({ kind: 'reject-entry' });
    expect(p.current).toBe(4);
  });

  it('does not drop a small single entry: a platform that 413s 600 bytes is misbehaving, so it is a failure', () => {
    const p = new PartSize({ max: 8, regrowAfterMs: 5 * MIN });
    expect(p.tooLarge(1, 0, 600)).toEqual({ kind: 'not-size' });
  });

  it('grows back after accepted pings, staying below a recently refused size', () => {
    const p = new PartSize({ max: 1000, regrowAfterMs: 5 * MIN });
    p.tooLarge(40, 0); // 20
    p.tooLarge(20, 10); // 10
    p.accepted(20);
    expect(p.current).toBe(19); // below the 20 that was refused
    p.accepted(30);
    expect(p.current).toBe(19);
  });

  it('forgets a refused size after regrowAfterMs and grows back to the maximum', () => {
    const p = new PartSize({ max: 1000, regrowAfterMs: 5 * MIN });
    for (const n of [1000, 500, 250, 125, 62, 31, 15, 7, 3, 2]) p.tooLarge(n, 0);
    expect(p.current).toBe(1);
    const sizes: number[] = [];
    for (let i = 1; i <= 12; i++) {
      p.accepted(5 * MIN + i);
      sizes.push(p.current);
    }
    expect(sizes).toEqual([2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 1000, 1000]);
  });
});

describe('leaseMs', () => {
  it('covers every part timing out in turn when that is short', () => {
    expect(leaseMs({ pacerMs: 1250, parts: 3, timeoutMs: 5000, maxIntervalMs: 30_000, slackMs: 250 })).toBe(15_250);
  });

  it('caps the promise at 2 x max_interval_ms + timeout however many parts', () => {
    // 10,000 parts of one entry promised 50,000 s (about 14 hours) before.
    expect(leaseMs({ pacerMs: 1250, parts: 10_000, timeoutMs: 5000, maxIntervalMs: 30_000, slackMs: 250 })).toBe(65_250);
  });
});

describe('RefusedEntries', () => {
  const w = (worker: string, meta = ''): PingWorker => ({
    worker, instance: 'i1', state: 'active', since: 1, first_seen: 1, last_seen: 2, beats: 1, seq: 1, meta: { m: meta },
  });
  const s = (worker: string): SentRecord => ({ worker, instance: 'i1', state: 'active', gen: 0, beats: 1 });
  const size = (x: PingWorker) => JSON.stringify(x).length;

  it('leaves a refused active entry out while it is about as large as when refused, and tries it again once smaller', () => {
    const r = new RefusedEntries();
    r.refuse('big', 'i1', size(w('big', 'x'.repeat(100))));
    const out = r.filter([w('a'), w('big', 'x'.repeat(100))], [s('a'), s('big')], size);
    expect(out.workers.map((x) => x.worker)).toEqual(['a']);
    expect(out.sent.map((x) => x.worker)).toEqual(['a']);
    expect(out.omitted).toBe(1);
    expect(r.filter([w('big', 'x')], [s('big')], size).workers.map((x) => x.worker)).toEqual(['big']);
  });

  it('never leaves out a terminal entry: a refused worker that went lost since is still reported', () => {
    const r = new RefusedEntries();
    const big = w('big', 'x'.repeat(100));
    r.refuse('big', 'i1', size(big));
    const lost: PingWorker = { ...big, state: 'lost', reason: 'heartbeat_timeout' };
    expect(r.filter([lost], [{ ...s('big'), state: 'lost' }], size).workers).toEqual([lost]);
  });

  it('forgets a refused instance once it is no longer listed', () => {
    const r = new RefusedEntries();
    r.refuse('gone', 'i1', 10);
    r.filter([w('a')], [s('a')], size);
    expect(r.size).toBe(0);
  });
});
