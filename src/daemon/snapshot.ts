/**
 * What a running `Daemon` shows of itself, and the few things tests and
 * benches may do to one: the seam they use instead of reaching into its
 * parts. Nothing here changes what the daemon does for workers or the
 * platform.
 */
import type { AddressInfo } from 'node:net';
import type { DaemonInfo } from '../core/batch.js';
import type { RejectReason } from '../protocol/decode.js';
import type { WorkerState } from '../protocol/schemas.js';
import type { HealthCheck } from './http/health.js';
import type { Handler, ResponseObserver } from './http/server.js';
import type { BeatResult } from './intake.js';
import type { JournalStats } from './journal/journal.js';
import type { Metrics, PingMetricOutcome } from './metrics.js';
import type { NatsState } from './nats-ingest.js';

/** Lifecycle of a daemon; every change is logged by `state`'s setter. */
export type DaemonState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/** Totals of the daemon's counters since it was built (the same numbers /metrics shows). */
export interface DaemonCounters {
  beatsAccepted: number;
  /** Every reject reason, zeros included. */
  beatsRejected: Record<RejectReason, number>;
  /** Leave announcements by result, then by phase: `leaves.applied.draining`. */
  leaves: Record<string, Record<string, number>>;
  /** Ping requests by outcome (outcomes not seen yet are absent). */
  pings: Partial<Record<PingMetricOutcome, number>>;
}

/** A read-only picture of a daemon at one moment. */
export interface DaemonSnapshot extends DaemonCounters {
  state: DaemonState;
  /** Node, instance, version and start time, as every ping carries them. */
  info: DaemonInfo;
  /** Where the HTTP interface listens; undefined before `start()` and after `stop()`. */
  http: AddressInfo | undefined;
  nats: {
    ready: boolean;
    state: NatsState;
    /** The connected server required TLS. */
    tls: boolean;
  };
  /** Tracked workers by state. */
  workers: Record<WorkerState, number>;
  /** Registry entries, retired instances still remembered included. */
  tracked: number;
  /** The current gap between quiet pings. */
  intervalMs: number;
  /** Event-loop stalls the loss clock has skipped. */
  stalls: number;
  /** The loss ticker is running: only while some worker can be convicted (an idle node wakes for nothing). */
  lossWatch: boolean;
  journal: JournalStats;
  /** Rounds of /healthz checks run (concurrent probes share one). */
  healthRounds: number;
}

/**
 * Operations only tests and benches use (nothing in src/ calls them); each
 * exists because a test could not check its guarantee from outside.
 */
export interface DaemonTestHooks {
  /** Replaces the /healthz check of the same name (a test makes one hang). */
  setHealthCheck(check: HealthCheck): void;
  /** Adds a route to the daemon's HTTP server, to test the server's own guarantees on it. */
  route(method: string, path: string, handler: Handler): void;
  /** Told of every request answered. */
  onResponse(observer: ResponseObserver): void;
  /** Switches the stall guard off: stalled time counts toward loss again (the control case). */
  disableStallGuard(): void;
  /** Told of the outcome of every beat arriving over NATS (benches count them as they come). */
  onNatsBeat(listener: (result: BeatResult) => void): void;
}

type Values = { values: { value: number; labels: Record<string, string | number | undefined> }[] };

/** Reads the counters behind {@link DaemonCounters}. */
export async function readCounters(m: Metrics): Promise<DaemonCounters> {
  const values = async (c: { get(): Promise<Values> }) => (await c.get()).values;
  const beatsRejected = {} as Record<RejectReason, number>;
  for (const v of await values(m.beatsRejected)) beatsRejected[String(v.labels.reason) as RejectReason] = v.value;
  const leaves: Record<string, Record<string, number>> = {};
  for (const v of await values(m.leaves)) (leaves[String(v.labels.result)] ??= {})[String(v.labels.phase)] = v.value;
  const pings: Partial<Record<PingMetricOutcome, number>> = {};
  for (const v of await values(m.pings)) pings[String(v.labels.outcome) as PingMetricOutcome] = v.value;
  return {
    beatsAccepted: (await values(m.beatsAccepted)).reduce((n, v) => n + v.value, 0),
    beatsRejected,
    leaves,
    pings,
  };
}
