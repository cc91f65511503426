/** The receiving side of delta pings (PROTOCOL.md 3.1): a node's view, base and roster checks, recovery. */
import { describe, expect, it } from 'vitest';
import { buildPing, type PingPart } from '../../src/core/batch.js';
import { rosterOf } from '../../src/core/roster.js';
import type { PingMode, PingWorker, Roster } from '../../src/protocol/schemas.js';
import { DeltaViews, NodeView } from '../../src/receiver/delta.js';

const INFO = { node: 'n', instance: 'd1', version: '1', startedAt: 0 };

function w(worker: string, state: PingWorker['state'] = 'active', extra: Partial<PingWorker> = {}): PingWorker {
  return { worker, instance: 'i1', state, since: 1, first_seen: 1, last_seen: 1, beats: 1, seq: 1, ...extra };
}

/** The parts of ping `seq`; the roster is that of `after` (the daemon's live entries once applied). */
function parts(seq: number, mode: PingMode, workers: PingWorker[], after: PingWorker[], o: { base?: number; partSize?: number; roster?: Roster; info?: typeof INFO } = {}): PingPart[] {
  return buildPing(o.info ?? INFO, {
    seq, workers, sent: [], partSize: o.partSize ?? 1000, sentAt: 0, nextPingWithinMs: 1000, final: false,
    delta: { mode, base: o.base, roster: o.roster ?? rosterOf(after) },
  });
}

const one = (p: PingPart[]) => p[0]!.body;

describe('NodeView', () => {
  it('applies a full ping, then deltas on it: a listed change, nothing for the rest', () => {
    const v = new NodeView('d1');
    const all = [w('a'), w('b'), w('c')];
    expect(v.apply(one(parts(1, 'full', all, all)))).toEqual({ kind: 'applied', complete: true, resync: false });
    expect(v.apply(one(parts(2, 'delta', [], all, { base: 1 })))).toMatchObject({ kind: 'applied', resync: false });
    const after = [w('a'), w('b', 'draining'), w('c')];
    expect(v.apply(one(parts(3, 'delta', [w('b', 'draining')], after, { base: 2 })))).toMatchObject({ resync: false });
    expect(v.live().map((e) => [e.worker, e.state])).toEqual([['a', 'active'], ['b', 'draining'], ['c', 'active']]);
    expect(v.rosterValue()).toEqual(rosterOf(after));
  });

  it('accepts a base older than the last complete ping (an answer the daemon never got) but not a newer one', () => {
    const v = new NodeView('d1');
    const all = [w('a')];
    v.apply(one(parts(1, 'full', all, all)));
    v.apply(one(parts(2, 'delta', [], all, { base: 1 })));
    expect(v.apply(one(parts(3, 'delta', [], all, { base: 1 })))).toMatchObject({ kind: 'applied' });
    expect(v.apply(one(parts(4, 'delta', [], all, { base: 7 })))).toMatchObject({ kind: 'conflict', reason: expect.stringContaining('base 7') });
  });

  it('refuses a delta before any full ping of the daemon instance', () => {
    const views = new DeltaViews();
    expect(views.apply(one(parts(5, 'delta', [], [], { base: 4 })))).toMatchObject({ kind: 'conflict' });
    views.apply(one(parts(6, 'full', [], [])));
    // A new daemon instance starts from nothing.
    expect(views.apply(one(parts(1, 'delta', [], [], { base: 0, info: { ...INFO, instance: 'd2' } })))).toMatchObject({ kind: 'conflict' });
  });

  it('rebuilds from a split full ping: entries no part listed are dropped when the last part arrives', () => {
    const v = new NodeView('d1');
    v.apply(one(parts(1, 'full', [w('gone'), w('a')], [w('gone'), w('a')])));
    const next = [w('a'), w('b'), w('c')];
    const split = parts(2, 'full', next, next, { partSize: 2 });
    expect(v.apply(split[0]!.body)).toEqual({ kind: 'applied', complete: false, resync: false });
    expect(v.live().map((e) => e.worker)).toContain('gone');
    expect(v.apply(split[1]!.body)).toEqual({ kind: 'applied', complete: true, resync: false });
    expect(v.live().map((e) => e.worker)).toEqual(['a', 'b', 'c']);
    expect(v.lastComplete).toBe(2);
  });

  it('checks the roster only after the last part, and refuses parts out of order', () => {
    const v = new NodeView('d1');
    const all = [w('a'), w('b'), w('c')];
    v.apply(one(parts(1, 'full', all, all)));
    const changed = [w('a', 'lost'), w('b', 'lost'), w('c', 'lost')];
    const split = parts(2, 'delta', changed, [], { base: 1, partSize: 1 });
    expect(v.apply(split[0]!.body)).toMatchObject({ complete: false, resync: false });
    expect(v.apply(split[2]!.body)).toMatchObject({ kind: 'conflict', reason: expect.stringContaining('out of order') });
  });

  it('recovers from a lost delta: the next delta names a base it never completed, is refused (409), and a full ping repairs the view', () => {
    const v = new NodeView('d1');
    const all = [w('a'), w('b')];
    v.apply(one(parts(1, 'full', all, all)));
    // Delta 2 (b stops) is accepted by some other replica, never by this view: the daemon's base moves to 2.
    const after = [w('a')];
    expect(v.apply(one(parts(3, 'delta', [], after, { base: 2 })))).toMatchObject({ kind: 'conflict' });
    expect(v.apply(one(parts(4, 'full', [w('a'), w('b', 'stopped')], after)))).toMatchObject({ kind: 'applied', resync: false });
    expect(v.live().map((e) => e.worker)).toEqual(['a']);
    expect(v.apply(one(parts(5, 'delta', [], after, { base: 4 })))).toMatchObject({ kind: 'applied', resync: false });
  });

  it('answers resync on a forged roster, refuses deltas until a full ping completes, then takes them again', () => {
    const v = new NodeView('d1');
    const all = [w('a'), w('b')];
    v.apply(one(parts(1, 'full', all, all)));
    const forged = { count: 2, xor: 'ffffffffffffffff' };
    expect(v.apply(one(parts(2, 'delta', [], all, { base: 1, roster: forged })))).toMatchObject({
      kind: 'applied', resync: true, reason: expect.stringContaining('roster mismatch'),
    });
    expect(v.apply(one(parts(3, 'delta', [], all, { base: 2 })))).toMatchObject({ kind: 'conflict' });
    expect(v.apply(one(parts(4, 'full', all, all)))).toMatchObject({ kind: 'applied', resync: false });
    expect(v.apply(one(parts(5, 'delta', [], all, { base: 4 })))).toMatchObject({ kind: 'applied', resync: false });
  });

  it('catches a divergence the base cannot see: an unlisted change shows in the roster', () => {
    const v = new NodeView('d1');
    const all = [w('a'), w('b')];
    v.apply(one(parts(1, 'full', all, all)));
    // The daemon dropped b without listing it: its roster says so.
    expect(v.apply(one(parts(2, 'delta', [], [w('a')], { base: 1 })))).toMatchObject({ resync: true });
  });

  it('takes v1 pings (no mode, no roster) as full pings without a roster check', () => {
    const v = new NodeView('d1');
    const body = one(buildPing(INFO, { seq: 1, workers: [w('a')], sent: [], partSize: 10, sentAt: 0, nextPingWithinMs: 1, final: false }));
    expect(body.batch.mode).toBeUndefined();
    expect(v.apply(body)).toEqual({ kind: 'applied', complete: true, resync: false });
    expect(v.live()).toHaveLength(1);
  });
});
