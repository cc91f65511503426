/**
 * Delta pings end to end in one process, under random interleavings: beats
 * (status and meta changing or not, gauges flapping), Leaves, losses,
 * restarts of workers and crashes of the daemon, and pings split into parts
 * whose parts are accepted, fail, are applied by the receiver but answered
 * too late, or are refused (409) or answered `resync` by the receiver's
 * own checks. After every ping that is completely accepted without a resync,
 * the receiver's view of the node equals the daemon's live entries (state,
 * reason, status, meta, interval_ms, since, first_seen) and each listed
 * entry's `beats_total` equals the daemon's; after the last full ping, every
 * live entry's `beats_total` is exact.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildPing } from '../../src/core/batch.js';
import { DeltaTracker } from '../../src/core/delta.js';
import { Registry, type RegistryOptions } from '../../src/core/registry.js';
import type { Instant } from '../../src/core/time.js';
import type { PingWorker } from '../../src/protocol/schemas.js';
import { DeltaViews } from '../../src/receiver/delta.js';

const WORKERS = ['w0', 'w1', 'w2', 'w3'] as const;
const INSTANCES = ['a', 'b'] as const;
const OPTS: RegistryOptions = {
  maxWorkers: 100, lostAfterMinMs: 3000, tombstoneRetentionMs: 60_000, maxTombstones: 1000, defaultDrainTimeoutMs: 5000,
};
const FULL_EVERY = 20_000;

/** What happens to one part: delivered and answered, never delivered, or delivered with the answer lost. */
type Fate = 'ok' | 'fail' | 'late';

type Op =
  | { op: 'beat'; w: number; i: number; busy: boolean; meta: number; gauge: number }
  | { op: 'leave'; w: number; i: number; phase: 'draining' | 'stopped' }
  | { op: 'advance'; ms: number }
  | { op: 'detectLoss' }
  | { op: 'ping'; partSize: number; fates: Fate[]; offer: boolean }
  | { op: 'forge' }
  | { op: 'crash' };

const fate = fc.oneof({ weight: 6, arbitrary: fc.constant<Fate>('ok') }, { weight: 1, arbitrary: fc.constant<Fate>('fail') }, { weight: 1, arbitrary: fc.constant<Fate>('late') });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({
      op: fc.constant('beat' as const), w: fc.nat(WORKERS.length - 1), i: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }),
      busy: fc.boolean(), meta: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat(2) }), gauge: fc.nat(5),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('leave' as const), w: fc.nat(WORKERS.length - 1), i: fc.nat(1), phase: fc.constantFrom('draining' as const, 'stopped' as const) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.oneof(fc.nat(1500), fc.integer({ min: 3000, max: 9000 })) }) },
  { weight: 2, arbitrary: fc.constant<Op>({ op: 'detectLoss' }) },
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('ping' as const), partSize: fc.integer({ min: 1, max: 4 }), fates: fc.array(fate, { minLength: 8, maxLength: 8 }),
      offer: fc.oneof({ weight: 9, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    }),
  },
  { weight: 1, arbitrary: fc.constant<Op>({ op: 'forge' }) },
  { weight: 1, arbitrary: fc.constant<Op>({ op: 'crash' }) },
);

const live = (p: PingWorker) => p.state === 'active' || p.state === 'draining';
const stable = (p: PingWorker) => ({
  worker: p.worker, instance: p.instance, state: p.state, reason: p.reason, status: p.status, meta: p.meta,
  interval_ms: p.interval_ms, since: p.since, first_seen: p.first_seen,
});
const byKey = (a: { worker: string; instance: string }, b: { worker: string; instance: string }) =>
  `${a.worker}/${a.instance}`.localeCompare(`${b.worker}/${b.instance}`);

function run(ops: readonly Op[]): { deltas: number; checks: number } {
  let mono = 0;
  const now = (): Instant => ({ wall: 1_700_000_000_000 + mono, mono });
  let generation = 0;
  const boot = () => {
    const registry = new Registry(OPTS);
    const tracker = new DeltaTracker({ fullEveryMs: FULL_EVERY });
    registry.watch(tracker);
    return { registry, tracker, info: { node: 'n', instance: `d${++generation}`, version: '1', startedAt: 0 }, seq: 0 };
  };
  let d = boot();
  const views = new DeltaViews();
  const seqs = new Map<string, number>();
  let forgeNext = false;
  let deltas = 0;
  let checks = 0;

  const ping = (partSize: number, fates: readonly Fate[], offer: boolean, final = false): boolean => {
    const seq = ++d.seq;
    const plan = d.tracker.plan(d.registry, seq, mono, final);
    if (plan.mode === 'delta') deltas++;
    const roster = forgeNext ? { count: plan.roster.count, xor: 'ffffffffffffffff' } : plan.roster;
    forgeNext = false;
    const parts = buildPing(d.info, {
      seq, workers: plan.workers, sent: plan.sent, partSize, sentAt: now().wall, nextPingWithinMs: 1000, final,
      delta: { mode: plan.mode, base: plan.base, roster },
    });
    let complete = true;
    let resync = false;
    for (const [i, part] of parts.entries()) {
      const f = fates[i % fates.length]!;
      if (f === 'fail') {
        complete = false;
        break;
      }
      const verdict = views.apply(part.body);
      if (verdict.kind === 'conflict') {
        d.tracker.conflict();
        complete = false;
        break;
      }
      resync ||= verdict.resync;
      if (f === 'late') {
        complete = false;
        break;
      }
      d.registry.acknowledge(part.sent, now());
      d.tracker.accepted(part.sent, { delta: offer, resync: verdict.resync });
    }
    d.tracker.finish(complete);
    if (!complete || resync) return false;
    // The receiver's view now equals what the daemon held when it built the ping.
    const view = views.get('n')!;
    const mine = d.registry.snapshot().filter(live).sort(byKey);
    expect(view.live().sort(byKey).map(stable), `view after ${plan.mode} ping ${seq}`).toEqual(mine.map(stable));
    for (const listed of plan.workers) {
      const held = mine.find((p) => p.worker === listed.worker && p.instance === listed.instance);
      if (held !== undefined) expect(view.entries.get(`${listed.worker}\n${listed.instance}`)?.beats_total).toBe(held.beats_total);
    }
    checks++;
    return true;
  };

  for (const o of ops) {
    switch (o.op) {
      case 'beat': {
        const worker = WORKERS[o.w]!;
        const instance = INSTANCES[o.i]!;
        const k = `${worker}/${instance}`;
        const seq = (seqs.get(k) ?? 0) + 1;
        seqs.set(k, seq);
        d.registry.applyBeat({
          v: 1, worker, instance, seq, interval_ms: 1000, status: o.busy ? 'busy' : 'idle', inflight: o.gauge, load: o.gauge / 5,
          ...(o.meta === 0 ? {} : { meta: { v: o.meta } }),
        }, now());
        break;
      }
      case 'leave': {
        const worker = WORKERS[o.w]!;
        const instance = INSTANCES[o.i]!;
        const k = `${worker}/${instance}`;
        const seq = (seqs.get(k) ?? 0) + 1;
        seqs.set(k, seq);
        d.registry.applyLeave({ v: 1, worker, instance, seq, phase: o.phase }, now());
        break;
      }
      case 'advance':
        mono += o.ms;
        break;
      case 'detectLoss':
        d.registry.detectLoss(now());
        break;
      case 'ping':
        ping(o.partSize, o.fates, o.offer);
        break;
      case 'forge':
        forgeNext = true;
        break;
      case 'crash': {
        // kill -9 and restart: the journal keeps terminals and live instances; a new daemon instance starts from a full ping.
        const saved = JSON.parse(JSON.stringify(d.registry.durable())) as PingWorker[];
        d = boot();
        d.registry.restore(saved, now());
        d.registry.restoreLive(saved, now());
        break;
      }
    }
  }
  // The platform answers well again: within two pings the view is exact, beats_total included.
  let ok = ping(1000, ['ok'], true);
  if (!ok) ok = ping(1000, ['ok'], true);
  expect(ok, 'a full ping after a failure or resync is accepted').toBe(true);
  const last = ping(1000, ['ok'], true, true);
  expect(last).toBe(true);
  const view = views.get('n')!;
  for (const p of d.registry.snapshot().filter(live)) {
    expect(view.entries.get(`${p.worker}\n${p.instance}`)?.beats_total, `beats_total of ${p.worker}/${p.instance}`).toBe(p.beats_total);
  }
  return { deltas, checks };
}

describe('delta pings under random interleavings', () => {
  it("leave the receiver's view equal to the daemon's after every completely accepted ping, beats_total exact", () => {
    let deltas = 0;
    let checks = 0;
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 80, size: 'max' }), (ops) => {
        const r = run(ops);
        deltas += r.deltas;
        checks += r.checks;
      }),
      { numRuns: 300 },
    );
    // The runs exercised deltas, not only full pings.
    expect(deltas).toBeGreaterThan(1000);
    expect(checks).toBeGreaterThan(1000);
  });
});
