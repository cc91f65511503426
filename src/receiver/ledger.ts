/**
 * What a platform learns from pings, as a reference for integrators. Pure:
 * time comes in as an argument; nothing here touches a socket.
 *
 * - A node's lease is `next_ping_within_ms` from the moment its ping arrived
 *   (the receiver's own clock: the sender's `sent_at` may be skewed). A lease
 *   that passes without a new ping expires the node, and with it every worker
 *   it listed as alive. A `final` ping ends the lease cleanly.
 * - A worker is tracked per instance: a new instance of a known worker is a
 *   restart; a state change of a known instance is a transition.
 * Every change comes out as one `ReceiverEvent`.
 */
import type { Ping, WorkerState } from '../protocol/schemas.js';
import type { Instant } from '../core/time.js';
import { DeltaViews, type DeltaVerdict } from './delta.js';

export type NodeChange = 'appeared' | 'restarted' | 'expired' | 'returned' | 'final';
export type WorkerChange = 'appeared' | 'restarted' | 'draining' | 'stopped' | 'lost' | 'returned';

/** One line of what the receiver learned; `at` is the receiver's wall clock. */
export type ReceiverEvent =
  | {
      type: 'node';
      change: NodeChange;
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
      at: number;
      node: string;
      worker: string;
      instance: string;
      reason?: string;
      /** restarted: the instance before. */
      previous?: string;
    }
  | { type: 'request'; change: 'rejected'; at: number; status: number; error: string };

export interface NodeLease {
  node: string;
  daemon: string;
  /** Monotonic deadline of the lease. */
  deadline: number;
  leaseMs: number;
  lastPingWall: number;
  state: 'alive' | 'expired' | 'final';
}

interface InstanceRecord {
  state: WorkerState;
  /** Monotonic time of the last ping that listed it. */
  seenMono: number;
}

interface WorkerRecord {
  /** The newest instance, the one a restart replaces. */
  current: string;
  instances: Map<string, InstanceRecord>;
}

export interface LedgerOptions {
  /** Terminal instances are forgotten after this long. Default 600000. */
  retentionMs?: number;
  /** Take delta pings (contract 1.6; `receive()` checks them). Default true. */
  delta?: boolean;
}

export class Ledger {
  private readonly nodes = new Map<string, NodeLease>();
  private readonly workers = new Map<string, Map<string, WorkerRecord>>();
  private readonly retentionMs: number;
  /** Each node's view for delta pings; undefined when deltas are refused. */
  readonly views: DeltaViews | undefined;

  constructor(opts: LedgerOptions = {}) {
    this.retentionMs = opts.retentionMs ?? 600_000;
    this.views = opts.delta === false ? undefined : new DeltaViews();
  }

  /**
   * 1.6: checks a ping against the node's view (base, part order, roster)
   * and applies it. A refused delta changes nothing (answer 409); a roster
   * mismatch is applied but asks for a resync.
   */
  receive(ping: Ping, t: Instant): { events: ReceiverEvent[]; verdict?: DeltaVerdict } {
    if (this.views === undefined) return { events: this.apply(ping, t) };
    const verdict = this.views.apply(ping);
    if (verdict.kind === 'conflict') return { events: [], verdict };
    return { events: this.apply(ping, t), verdict };
  }

  /** Applies one accepted ping (or part) received at `t`; returns what changed. */
  apply(ping: Ping, t: Instant): ReceiverEvent[] {
    const events: ReceiverEvent[] = [];
    this.applyNode(ping, t, events);
    const workers = this.nodeWorkers(ping.node);
    for (const w of ping.workers) {
      const base = { type: 'worker' as const, at: t.wall, node: ping.node, worker: w.worker, instance: w.instance };
      const reason = w.reason === undefined ? {} : { reason: w.reason };
      let rec = workers.get(w.worker);
      const known = rec?.instances.get(w.instance);
      if (known !== undefined) {
        if (known.state !== w.state) {
          const change: WorkerChange = w.state === 'active' ? 'returned' : w.state;
          events.push({ ...base, change, ...(w.state === 'active' ? {} : reason) });
        }
        known.state = w.state;
        known.seenMono = t.mono;
        continue;
      }
      const terminal = w.state === 'stopped' || w.state === 'lost' ? w.state : undefined;
      if (terminal !== undefined) {
        // A terminal report of an instance we never saw (we started late, or it lived between two pings).
        events.push({ ...base, change: terminal, ...reason });
        if (rec === undefined) {
          rec = { current: w.instance, instances: new Map() };
          workers.set(w.worker, rec);
        }
      } else if (rec === undefined) {
        rec = { current: w.instance, instances: new Map() };
        workers.set(w.worker, rec);
        events.push({ ...base, change: 'appeared' });
      } else {
        events.push({ ...base, change: 'restarted', previous: rec.current });
        rec.current = w.instance;
      }
      if (w.state === 'draining') events.push({ ...base, change: 'draining', ...reason });
      rec.instances.set(w.instance, { state: w.state, seenMono: t.mono });
    }
    return events;
  }

  private applyNode(ping: Ping, t: Instant, events: ReceiverEvent[]): void {
    const leaseMs = ping.batch.next_ping_within_ms;
    const base = { type: 'node' as const, at: t.wall, node: ping.node, daemon: ping.daemon.instance };
    const prev = this.nodes.get(ping.node);
    if (prev === undefined) {
      events.push({ ...base, change: 'appeared', lease_ms: leaseMs });
    } else if (prev.daemon !== ping.daemon.instance) {
      events.push({ ...base, change: 'restarted', lease_ms: leaseMs, previous: prev.daemon });
    } else if (prev.state === 'expired') {
      events.push({ ...base, change: 'returned', lease_ms: leaseMs });
    }
    const final = ping.batch.final;
    if (final && prev?.state !== 'final') events.push({ ...base, change: 'final' });
    this.nodes.set(ping.node, {
      node: ping.node,
      daemon: ping.daemon.instance,
      deadline: t.mono + leaseMs,
      leaseMs,
      lastPingWall: t.wall,
      // A later part of the same final ping keeps the node final.
      state: final || (prev?.state === 'final' && prev.daemon === ping.daemon.instance) ? 'final' : 'alive',
    });
  }

  /** Expires every lease that has passed by `t`, and forgets old terminal instances. */
  expire(t: Instant): ReceiverEvent[] {
    const events: ReceiverEvent[] = [];
    for (const n of this.nodes.values()) {
      if (n.state !== 'alive' || n.deadline > t.mono) continue;
      n.state = 'expired';
      events.push({
        type: 'node', change: 'expired', at: t.wall, node: n.node, daemon: n.daemon,
        lease_ms: n.leaseMs, workers: this.aliveCount(n.node),
      });
    }
    this.prune(t.mono);
    return events;
  }

  /** The earliest lease deadline still running (Infinity when none). */
  nextDeadline(): number {
    let next = Infinity;
    for (const n of this.nodes.values()) if (n.state === 'alive' && n.deadline < next) next = n.deadline;
    return next;
  }

  nodeList(): NodeLease[] {
    return [...this.nodes.values()].map((n) => ({ ...n }));
  }

  /** Current instances by state, over all nodes. */
  countByState(): Record<WorkerState, number> {
    const counts: Record<WorkerState, number> = { active: 0, draining: 0, stopped: 0, lost: 0 };
    for (const workers of this.workers.values()) {
      for (const rec of workers.values()) {
        const cur = rec.instances.get(rec.current);
        if (cur) counts[cur.state]++;
      }
    }
    return counts;
  }

  /** Every tracked instance: `{node, worker, instance, state, current}`. */
  workerList(): { node: string; worker: string; instance: string; state: WorkerState; current: boolean }[] {
    const out = [];
    for (const [node, workers] of this.workers) {
      for (const [worker, rec] of workers) {
        for (const [instance, r] of rec.instances) {
          out.push({ node, worker, instance, state: r.state, current: instance === rec.current });
        }
      }
    }
    return out;
  }

  private nodeWorkers(node: string): Map<string, WorkerRecord> {
    let m = this.workers.get(node);
    if (m === undefined) {
      m = new Map();
      this.workers.set(node, m);
    }
    return m;
  }

  private aliveCount(node: string): number {
    let n = 0;
    for (const rec of this.workers.get(node)?.values() ?? []) {
      const cur = rec.instances.get(rec.current);
      if (cur?.state === 'active' || cur?.state === 'draining') n++;
    }
    return n;
  }

  private prune(mono: number): void {
    for (const workers of this.workers.values()) {
      for (const [worker, rec] of workers) {
        for (const [instance, r] of rec.instances) {
          const terminal = r.state === 'stopped' || r.state === 'lost';
          if (terminal && mono - r.seenMono > this.retentionMs && instance !== rec.current) rec.instances.delete(instance);
        }
        const cur = rec.instances.get(rec.current);
        if (cur && (cur.state === 'stopped' || cur.state === 'lost') && mono - cur.seenMono > this.retentionMs) {
          workers.delete(worker);
        }
      }
    }
  }
}
