/**
 * The per-node record the ledger reads and writes: plain JSON, so a store can
 * keep it anywhere (a Map, a JetStream KV entry) and compare-and-set it whole.
 */
import type { WorkerState } from '../protocol/schemas.js';
import type { RecordEvent } from './ledger.js';

export type NodeState = 'alive' | 'expired' | 'final';

export interface InstanceRecord {
  state: WorkerState;
  /** Wall time of the last ping that listed it. */
  seen: number;
  reason?: string;
}

export interface WorkerRecord {
  /** The newest instance, the one a restart replaces. */
  current: string;
  instances: Record<string, InstanceRecord>;
}

/** A new daemon instance's first complete ping, being collected part by part. */
export interface PendingRestart {
  daemon: string;
  seq: number;
  parts: number;
  seen: number[];
  /** Workers listed so far by this ping's parts. */
  listed: string[];
  /** Workers the previous instance left live. */
  live: string[];
}

export interface NodeRecord {
  node: string;
  daemon: string;
  leaseMs: number;
  /** Wall time the lease passes (receivers share it, so it cannot be a monotonic time). */
  deadline: number;
  lastPing: number;
  state: NodeState;
  workers: Record<string, WorkerRecord>;
  /** Sum of `beats` over the applied pings: every beat the daemon had accepted, once per applied ping. */
  beats: number;
  /** Recent batch ids, oldest first: a ping whose id is here was applied already. */
  applied: string[];
  restart?: PendingRestart;
  /**
   * Events written with this version of the record and maybe not yet published
   * to the event stream: whoever sees them republishes (the stream dedups by id).
   */
  outbox?: RecordEvent[];
  /** Wall time the outbox was written. */
  outboxAt?: number;
}
