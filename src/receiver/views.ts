/** What the query routes answer: derived from the records only, so every replica answers the same. */
import type { WorkerState } from '../protocol/schemas.js';
import type { NodeRecord, NodeState } from './record.js';

export interface NodeView {
  node: string;
  daemon: string;
  state: NodeState;
  lease_ms: number;
  /** Wall time the lease passes. */
  lease_until: number;
  last_ping: number;
  /** Beats reported by the applied pings. */
  beats: number;
  /** Current instances by state. */
  counts: Record<WorkerState, number>;
}

export interface WorkerView {
  node: string;
  worker: string;
  instance: string;
  state: WorkerState;
  /** False for an instance a restart replaced. */
  current: boolean;
  last_seen: number;
  reason?: string;
}

export const WORKER_STATES: readonly WorkerState[] = ['active', 'draining', 'stopped', 'lost'];

export function nodeView(r: NodeRecord): NodeView {
  const counts: Record<WorkerState, number> = { active: 0, draining: 0, stopped: 0, lost: 0 };
  for (const wr of Object.values(r.workers)) {
    const cur = wr.instances[wr.current];
    if (cur) counts[cur.state]++;
  }
  return { node: r.node, daemon: r.daemon, state: r.state, lease_ms: r.leaseMs, lease_until: r.deadline, last_ping: r.lastPing, beats: r.beats, counts };
}

export function workerViews(r: NodeRecord): WorkerView[] {
  const out: WorkerView[] = [];
  for (const worker of Object.keys(r.workers).sort()) {
    const wr = r.workers[worker]!;
    for (const instance of Object.keys(wr.instances).sort()) {
      const i = wr.instances[instance]!;
      out.push({
        node: r.node, worker, instance, state: i.state, current: instance === wr.current, last_seen: i.seen,
        ...(i.reason === undefined ? {} : { reason: i.reason }),
      });
    }
  }
  return out;
}

export const byNode = (a: { node: string }, b: { node: string }) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0);
