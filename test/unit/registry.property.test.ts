/**
 * The registry under random interleavings of beats (several workers, several
 * instances each, seq sometimes going backwards), Leaves, restarts, clock
 * advances, loss detection, pruning and pings that are accepted (whole or a
 * prefix of their parts, sometimes after more beats) or fail. A model kept
 * beside it checks docs/PROTOCOL.md 2.1 (exactly-once `beats`), 2.3
 * (suppression), 2.7 (every terminal state reaches an accepted ping unless
 * superseded; live instances survive a crash) and 3 (`beats_total` counts
 * every accepted beat).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildPing, type PingPart } from '../../src/core/batch.js';
import { Registry, type RegistryOptions } from '../../src/core/registry.js';
import type { Instant } from '../../src/core/time.js';
import type { PingWorker, WorkerState } from '../../src/protocol/schemas.js';

const WORKERS = ['w0', 'w1', 'w2'] as const;
const INSTANCES = ['a', 'b', 'c'] as const;
const OPTS: RegistryOptions = {
  maxWorkers: 100,
  lostAfterMinMs: 3000,
  tombstoneRetentionMs: 60_000,
  maxTombstones: 100_000,
  defaultDrainTimeoutMs: 5000,
};
const INFO = { node: 'n', instance: 'd', version: '1', startedAt: 0 };

type Op =
  | { op: 'beat'; w: number; i: number; seqStep: number; interval: number }
  | { op: 'leave'; w: number; i: number; seqStep: number; phase: 'draining' | 'stopped'; drain?: number }
  | { op: 'advance'; ms: number }
  | { op: 'detectLoss' }
  | { op: 'prune' }
  | { op: 'startPing'; partSize: number }
  | { op: 'finishPing'; accepted: number | 'all' }
  | { op: 'crash' };

// Mostly the first instance and increasing seqs, so workers live long enough to be lost, come back and leave.
const who = {
  w: fc.nat(WORKERS.length - 1),
  i: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constant(2) }),
  seqStep: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 3 }) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 0 }) }),
};
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ op: fc.constant('beat' as const), ...who, interval: fc.constantFrom(100, 1000, 4000) }) },
  {
    weight: 2,
    arbitrary: fc.record(
      { op: fc.constant('leave' as const), ...who, phase: fc.constantFrom('draining' as const, 'stopped' as const), drain: fc.nat(8000) },
      { requiredKeys: ['op', 'w', 'i', 'seqStep', 'phase'] },
    ),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.nat(500) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 2000, max: 8000 }) }) },
  { weight: 3, arbitrary: fc.constant<Op>({ op: 'detectLoss' }) },
  { weight: 1, arbitrary: fc.constant<Op>({ op: 'prune' }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('startPing' as const), partSize: fc.integer({ min: 1, max: 4 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('finishPing' as const), accepted: fc.oneof(fc.constant('all' as const), fc.nat(3)) }),
  },
  { weight: 1, arbitrary: fc.constant<Op>({ op: 'crash' }) },
);

const TERMINAL: ReadonlySet<WorkerState> = new Set(['stopped', 'lost']);
const keyOf = (p: { worker: string; instance: string }) => `${p.worker}/${p.instance}`;

/** One terminal state an entry entered, and whether an accepted ping carried it. */
interface Occurrence {
  id: number;
  key: string;
  state: WorkerState;
  reason?: string;
  delivered: boolean;
  superseded: boolean;
}

function run(ops: readonly Op[]): void {
  let r = new Registry(OPTS);
  let mono = 0;
  const now = (): Instant => ({ wall: 1_763_719_000_000 + mono, mono });

  // What the registry accepted and what accepted pings carried, per instance.
  const accepted = new Map<string, number>();
  const delivered = new Map<string, number>();
  /** Accepted beats per instance since the registry first held it (what `beats_total` must say). */
  const totals = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, n: number) => m.set(k, (m.get(k) ?? 0) + n);
  const lastSeqSent = new Map<string, number>();
  /** Highest seq of an accepted beat or of any Leave, per instance: what an entry may show. */
  const maxSeq = new Map<string, number>();
  /** Instances with an acknowledged Leave: when (first), for the retention window. */
  const leftAt = new Map<string, number>();

  // Terminal occurrences, found by comparing snapshots after every step.
  const occurrences: Occurrence[] = [];
  const current = new Map<string, { p: PingWorker; occ?: Occurrence }>();
  let inFlight: { parts: PingPart[]; occ: Map<string, Occurrence> } | undefined;

  const leftWithinRetention = (k: string) => {
    const t = leftAt.get(k);
    return t !== undefined && mono - t < OPTS.tombstoneRetentionMs;
  };

  const observe = () => {
    const snap = r.snapshot();
    const seen = new Set<string>();
    for (const p of snap) {
      const k = keyOf(p);
      expect(seen.has(k), `one entry per instance: ${k}`).toBe(false);
      seen.add(k);
      // 2.1: an entry holds exactly the accepted beats no accepted ping carried yet.
      expect(p.beats, `beats of ${k}`).toBe((accepted.get(k) ?? 0) - (delivered.get(k) ?? 0));
      expect(p.beats_total, `beats_total of ${k}`).toBe(totals.get(k) ?? 0);
      if (leftWithinRetention(k)) {
        expect(p.state, `${k} left: never active again`).not.toBe('active');
        expect(p.seq, `${k} left: seq from no later beat`).toBeLessThanOrEqual(maxSeq.get(k) ?? -1);
      }
      const prev = current.get(k);
      let occ = prev?.occ;
      const changed = prev === undefined || prev.p.state !== p.state || prev.p.since !== p.since || prev.p.reason !== p.reason;
      if (changed) {
        if (occ) occ.superseded = true;
        occ = undefined;
        if (TERMINAL.has(p.state)) {
          occ = { id: occurrences.length, key: k, state: p.state, reason: p.reason, delivered: false, superseded: false };
          occurrences.push(occ);
        }
      }
      current.set(k, { p, occ });
    }
    for (const [k, { p, occ }] of current) {
      if (seen.has(k)) continue;
      // An entry is forgotten only once the platform has it: a delivered terminal state.
      expect(TERMINAL.has(p.state), `${k} forgotten while ${p.state}`).toBe(true);
      expect(occ?.delivered, `${k} forgotten before its ${p.state} was accepted`).toBe(true);
      expect(accepted.get(k) ?? 0, `${k} forgotten with beats owed`).toBe(delivered.get(k) ?? 0);
      current.delete(k);
      totals.delete(k); // heard of again (a late Leave), it counts from 0

    }
    // Every ping lists every active and draining entry.
    const listed = new Set(r.collect().workers.map(keyOf));
    for (const p of snap) if (p.state === 'active' || p.state === 'draining') expect(listed.has(keyOf(p))).toBe(true);
  };

  const startPing = (partSize: number) => {
    const { workers, sent } = r.collect();
    expect(new Set(workers.map(keyOf)).size).toBe(workers.length);
    const occ = new Map<string, Occurrence>();
    for (const p of workers) {
      const k = keyOf(p);
      const c = current.get(k);
      expect(c?.p.state, `collected ${k} as observed`).toBe(p.state);
      if (c?.occ) occ.set(k, c.occ);
      if (leftWithinRetention(k)) expect(p.state).not.toBe('active');
    }
    const parts = buildPing(INFO, { seq: 1, workers, sent, partSize, sentAt: now().wall, nextPingWithinMs: 1000, final: false });
    inFlight = { parts, occ };
  };

  const finishPing = (acceptedParts: number | 'all') => {
    if (!inFlight) return;
    const { parts, occ } = inFlight;
    inFlight = undefined;
    const n = acceptedParts === 'all' ? parts.length : Math.min(acceptedParts, parts.length);
    for (const part of parts.slice(0, n)) {
      r.acknowledge(part.sent, now());
      for (const p of part.body.workers) {
        add(delivered, keyOf(p), p.beats);
        const o = occ.get(keyOf(p));
        if (o && TERMINAL.has(p.state)) o.delivered = true;
      }
    }
  };

  for (const o of ops) {
    switch (o.op) {
      case 'beat':
      case 'leave': {
        const worker = WORKERS[o.w]!;
        const instance = INSTANCES[o.i]!;
        const k = `${worker}/${instance}`;
        const seq = Math.max(0, (lastSeqSent.get(k) ?? 0) + o.seqStep);
        lastSeqSent.set(k, seq);
        if (o.op === 'beat') {
          const out = r.applyBeat({ v: 1, worker, instance, seq, interval_ms: o.interval }, now());
          if (leftWithinRetention(k)) expect(out, `beat of ${k} after its Leave`).toMatchObject({ ok: false, reason: 'suppressed' });
          if (out.ok) {
            add(accepted, k, 1);
            add(totals, k, 1);
            maxSeq.set(k, Math.max(maxSeq.get(k) ?? -1, seq));
          }
        } else {
          const leave = { v: 1 as const, worker, instance, seq, phase: o.phase, ...(o.drain === undefined ? {} : { drain_timeout_ms: o.drain }) };
          const out = r.applyLeave(leave, now());
          expect(out.ok).toBe(true);
          maxSeq.set(k, Math.max(maxSeq.get(k) ?? -1, seq));
          if (!leftAt.has(k)) leftAt.set(k, mono);
        }
        break;
      }
      case 'advance':
        mono += o.ms;
        break;
      case 'detectLoss':
        r.detectLoss(now());
        break;
      case 'prune':
        r.prune(now());
        break;
      case 'startPing':
        if (!inFlight) startPing(o.partSize);
        break;
      case 'finishPing':
        finishPing(o.accepted);
        break;
      case 'crash': {
        // kill -9 and restart: the unaccepted terminal states and the live instances survive (the journal), the ping in flight is lost.
        const saved = JSON.parse(JSON.stringify(r.durable())) as PingWorker[];
        r = new Registry(OPTS);
        r.restore(saved, now());
        r.restoreLive(saved, now());
        inFlight = undefined;
        const restored = new Map(r.snapshot().map((p) => [keyOf(p), p.state]));
        const kept = new Set(restored.keys());
        for (const k of new Set([...accepted.keys(), ...current.keys(), ...leftAt.keys(), ...totals.keys()])) {
          // A live instance comes back with no beat owed: its unsent beats are only in beats_total.
          if (restored.get(k) === 'active') delivered.set(k, accepted.get(k) ?? 0);
          if (kept.has(k)) continue;
          // What the registry held only in memory is gone: unsent beats of live workers, Leaves already accepted.
          delivered.set(k, accepted.get(k) ?? 0);
          totals.delete(k);
          leftAt.delete(k);
          const c = current.get(k);
          if (c?.occ && !c.occ.delivered) throw new Error(`${k}: an unaccepted ${c.p.state} was not in unackedTerminals()`);
          current.delete(k);
        }
        break;
      }
    }
    observe();
  }

  // The platform comes back: the ping in flight fails, then one ping is accepted whole.
  finishPing(0);
  startPing(1000);
  finishPing('all');
  observe();

  const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  expect(total(delivered), 'every accepted beat delivered exactly once').toBe(total(accepted));
  for (const p of r.snapshot()) expect(p.beats).toBe(0);
  for (const p of r.collect().workers) expect(p.state === 'active' || p.state === 'draining', `${keyOf(p)} still owed`).toBe(true);
  for (const occ of occurrences) {
    if (!occ.superseded) expect(occ.delivered, `${occ.key} ${occ.state} (${occ.reason}) never accepted`).toBe(true);
  }
  // Accepted lost entries are forgotten once the retention has passed (2.8).
  mono += OPTS.tombstoneRetentionMs;
  r.prune(now());
  for (const p of r.snapshot()) expect(p.state === 'active' || p.state === 'draining', `${keyOf(p)} kept as ${p.state}`).toBe(true);
}

describe('Registry under random interleavings', () => {
  it('keeps beats exactly once, Leaves in force and terminal states owed until accepted, and never throws', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 80, size: 'max' }), (ops) => run(ops)),
      { numRuns: 400 },
    );
  });

  it('replays the interleavings that found bugs', () => {
    // An older lost state's acknowledgement arriving after the worker came back and was lost again.
    run([
      { op: 'beat', w: 0, i: 0, seqStep: 1, interval: 1000 },
      { op: 'advance', ms: 3000 },
      { op: 'detectLoss' },
      { op: 'startPing', partSize: 4 },
      { op: 'beat', w: 0, i: 0, seqStep: 1, interval: 1000 },
      { op: 'advance', ms: 3000 },
      { op: 'detectLoss' },
      { op: 'finishPing', accepted: 'all' },
    ]);
    // A Leave of a replaced, draining instance that made the current (accepted lost) one unprunable.
    run([
      { op: 'beat', w: 0, i: 0, seqStep: 1, interval: 1000 },
      { op: 'leave', w: 0, i: 0, seqStep: 1, phase: 'draining', drain: 8000 },
      { op: 'beat', w: 0, i: 1, seqStep: 1, interval: 1000 },
      { op: 'advance', ms: 3000 },
      { op: 'detectLoss' },
      { op: 'startPing', partSize: 4 },
      { op: 'finishPing', accepted: 'all' },
      { op: 'leave', w: 0, i: 0, seqStep: 1, phase: 'stopped' },
    ]);
  });
});
