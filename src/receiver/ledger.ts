/**
 * What a platform learns from pings, as a reference for integrators. Pure:
 * time comes in as an argument, state comes in and goes out as a plain
 * JSON-able `NodeRecord` (one per node), so the same rules run over the
 * in-memory store and over a JetStream KV bucket shared by many replicas.
 *
 * - A node's lease is `next_ping_within_ms` from the moment its ping arrived
 *   (the receiver's wall clock: the sender's `sent_at` may be skewed). A lease
 *   that passes without a new ping expires the node. A `final` ping ends the
 *   lease cleanly.
 * - A worker is tracked per instance: a new instance of a known worker is a
 *   restart; a state change of a known instance is a transition.
 * - A new daemon instance on a node: its first complete ping lists every live
 *   worker, so a worker held live before and absent from it is `lost`
 *   (reason `daemon_restarted`).
 * - A batch id already applied to the record is a duplicate and changes nothing.
 * Every change comes out as one `ReceiverEvent` with a deterministic `id`.
 */
import type { Ping, WorkerState } from '../protocol/schemas.js';
import type { Instant } from '../core/time.js';
import type { NodeRecord, NodeState } from './record.js';

export type { InstanceRecord, NodeRecord, NodeState, WorkerRecord } from './record.js';
export type NodeChange = 'appeared' | 'restarted' | 'expired' | 'returned' | 'final';
export type WorkerChange = 'appeared' | 'restarted' | 'draining' | 'stopped' | 'lost' | 'returned';

/** One line of what the receiver learned; `at` is the receiver's wall clock. */
export type ReceiverEvent =
  | {
      type: 'node';
      change: NodeChange;
      /** Deterministic (node, batch id, position): the dedup key of the event stream. */
      id: string;
      at: number;
      node: string;
      daemon: string;
      /** The lease that was granted (appeared, restarted, returned) or that passed (expired). */
      lease_ms?: number;
      /** expired: workers the node listed as alive, now unknown. */
      workers?: number;
      /** restarted: the daemon instance before. */
      previous?: string;
    }
  | {
      type: 'worker';
      change: WorkerChange;
      id: string;
      at: number;
      node: string;
      worker: string;
      instance: string;
      reason?: string;
      /** restarted: the instance before. */
      previous?: string;
    }
  | { type: 'request'; change: 'rejected'; at: number; status: number; error: string };

export type RecordEvent = Exclude<ReceiverEvent, { type: 'request' }>;

export interface LedgerOptions {
  /** Terminal instances are forgotten after this long. Default 600000. */
  retentionMs?: number;
  /** How many recent batch ids each node remembers for deduplication (a retry gets a new id: only copies of one request share it). Default 16. */
  appliedIds?: number;
}

export type ApplyResult =
  | { duplicate: true }
  | { duplicate: false; record: NodeRecord; events: RecordEvent[] };

const DEFAULT_RETENTION_MS = 600_000;
const DEFAULT_APPLIED_IDS = 16;
const isLive = (s: WorkerState | undefined) => s === 'active' || s === 'draining';

/** Applies one ping (or part) received at `t` to the node's record (undefined: never seen). */
export function applyPing(prev: NodeRecord | undefined, ping: Ping, t: Instant, opts: LedgerOptions = {}): ApplyResult {
  if (prev?.applied.includes(ping.batch.id)) return { duplicate: true };
  const rec = cloneRecord(prev, ping);
  const events: RecordEvent[] = [];
  const nextId = () => `${ping.node}:${ping.batch.id}:${events.length}`;
  applyNode(prev, rec, ping, t, events, nextId);

  for (const w of ping.workers) {
    const base = { type: 'worker' as const, at: t.wall, node: ping.node, worker: w.worker, instance: w.instance };
    const reason = w.reason === undefined ? {} : { reason: w.reason };
    let wr = rec.workers[w.worker];
    const known = wr?.instances[w.instance];
    if (known !== undefined) {
      if (known.state !== w.state) {
        const change: WorkerChange = w.state === 'active' ? 'returned' : w.state;
        events.push({ ...base, id: nextId(), change, ...(w.state === 'active' ? {} : reason) });
      }
      wr!.instances[w.instance] = { state: w.state, seen: t.wall, ...reason };
      continue;
    }
    const terminal = w.state === 'stopped' || w.state === 'lost' ? w.state : undefined;
    if (terminal !== undefined) {
      // A terminal report of an instance we never saw (we started late, or it lived between two pings).
      events.push({ ...base, id: nextId(), change: terminal, ...reason });
      if (wr === undefined) {
        wr = { current: w.instance, instances: {} };
        rec.workers[w.worker] = wr;
      }
    } else if (wr === undefined) {
      wr = { current: w.instance, instances: {} };
      rec.workers[w.worker] = wr;
      events.push({ ...base, id: nextId(), change: 'appeared' });
    } else {
      events.push({ ...base, id: nextId(), change: 'restarted', previous: wr.current });
      wr.current = w.instance;
    }
    if (w.state === 'draining') events.push({ ...base, id: nextId(), change: 'draining', ...reason });
    wr.instances[w.instance] = { state: w.state, seen: t.wall, ...reason };
  }

  settleRestart(rec, ping, t, events, nextId);
  for (const w of ping.workers) rec.beats += w.beats;
  rec.applied.push(ping.batch.id);
  const keep = opts.appliedIds ?? DEFAULT_APPLIED_IDS;
  if (rec.applied.length > keep) rec.applied.splice(0, rec.applied.length - keep);
  prune(rec, t.wall, opts.retentionMs ?? DEFAULT_RETENTION_MS);
  return { duplicate: false, record: rec, events };
}

function applyNode(
  prev: NodeRecord | undefined, rec: NodeRecord, ping: Ping, t: Instant, events: RecordEvent[], nextId: () => string,
): void {
  const leaseMs = ping.batch.next_ping_within_ms;
  const base = { type: 'node' as const, at: t.wall, node: ping.node, daemon: ping.daemon.instance };
  if (prev === undefined) {
    events.push({ ...base, id: nextId(), change: 'appeared', lease_ms: leaseMs });
  } else if (prev.daemon !== ping.daemon.instance) {
    events.push({ ...base, id: nextId(), change: 'restarted', lease_ms: leaseMs, previous: prev.daemon });
    // Workers the old instance left live wait for the new instance's first complete ping.
    const live = Object.keys(prev.workers).filter((w) => isLive(prev.workers[w]?.instances[prev.workers[w]!.current]?.state));
    if (live.length > 0) rec.restart = { daemon: ping.daemon.instance, seq: ping.batch.seq, parts: ping.batch.parts, seen: [], listed: [], live };
    else delete rec.restart;
  } else if (prev.state === 'expired') {
    events.push({ ...base, id: nextId(), change: 'returned', lease_ms: leaseMs });
  }
  const final = ping.batch.final;
  if (final && prev?.state !== 'final') events.push({ ...base, id: nextId(), change: 'final' });
  rec.daemon = ping.daemon.instance;
  rec.deadline = t.wall + leaseMs;
  rec.leaseMs = leaseMs;
  rec.lastPing = t.wall;
  // A later part of the same final ping keeps the node final.
  const sameDaemon = prev?.daemon === ping.daemon.instance;
  rec.state = final || (prev?.state === 'final' && sameDaemon) ? 'final' : 'alive';
}

/** Once every part of one ping of the new daemon instance is in, workers it did not list are lost. */
function settleRestart(rec: NodeRecord, ping: Ping, t: Instant, events: RecordEvent[], nextId: () => string): void {
  const r = rec.restart;
  // Only a full ping lists every live worker (a delta lists what changed).
  if (r === undefined || r.daemon !== ping.daemon.instance || ping.batch.mode === 'delta') return;
  if (r.seq !== ping.batch.seq) {
    // Parts of an earlier ping went missing (its retry is rebuilt under a new seq): every ping is complete, start over.
    Object.assign(r, { seq: ping.batch.seq, parts: ping.batch.parts, seen: [], listed: [] });
  }
  if (!r.seen.includes(ping.batch.part)) r.seen.push(ping.batch.part);
  for (const w of ping.workers) if (!r.listed.includes(w.worker)) r.listed.push(w.worker);
  if (r.seen.length < r.parts) return;
  for (const worker of r.live) {
    if (r.listed.includes(worker)) continue;
    const wr = rec.workers[worker];
    const cur = wr?.instances[wr.current];
    if (wr === undefined || cur === undefined || !isLive(cur.state)) continue;
    wr.instances[wr.current] = { state: 'lost', seen: t.wall, reason: 'daemon_restarted' };
    events.push({
      type: 'worker', id: nextId(), change: 'lost', at: t.wall, node: rec.node, worker, instance: wr.current, reason: 'daemon_restarted',
    });
  }
  delete rec.restart;
}

/** Expires the node when its lease has passed by `t`; undefined when nothing changes. */
export function expireNode(prev: NodeRecord, t: Instant): { record: NodeRecord; events: RecordEvent[] } | undefined {
  if (prev.state !== 'alive' || prev.deadline > t.wall) return undefined;
  // The caller publishes an outbox left behind before it writes the new record.
  const { outbox: _o, outboxAt: _a, ...rest } = prev;
  const record: NodeRecord = { ...rest, state: 'expired' };
  const event: RecordEvent = {
    type: 'node', change: 'expired', id: `${prev.node}:expired:${prev.daemon}:${prev.deadline}`, at: t.wall, node: prev.node,
    daemon: prev.daemon, lease_ms: prev.leaseMs, workers: liveCount(prev),
  };
  return { record, events: [event] };
}

export function liveCount(rec: NodeRecord): number {
  let n = 0;
  for (const wr of Object.values(rec.workers)) if (isLive(wr.instances[wr.current]?.state)) n++;
  return n;
}

function cloneRecord(prev: NodeRecord | undefined, ping: Ping): NodeRecord {
  if (prev === undefined) {
    return { node: ping.node, daemon: ping.daemon.instance, leaseMs: 0, deadline: 0, lastPing: 0, state: 'alive' as NodeState, workers: {}, beats: 0, applied: [] };
  }
  // Records are small and plain: a structured clone keeps the input untouched (the caller may retry a CAS with it).
  const { outbox: _outbox, ...rest } = prev;
  return structuredClone(rest);
}

function prune(rec: NodeRecord, wall: number, retentionMs: number): void {
  for (const [worker, wr] of Object.entries(rec.workers)) {
    for (const [instance, r] of Object.entries(wr.instances)) {
      const terminal = r.state === 'stopped' || r.state === 'lost';
      if (terminal && wall - r.seen > retentionMs && instance !== wr.current) delete wr.instances[instance];
    }
    const cur = wr.instances[wr.current];
    if (cur && (cur.state === 'stopped' || cur.state === 'lost') && wall - cur.seen > retentionMs) delete rec.workers[worker];
  }
}
