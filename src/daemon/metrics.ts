/**
 * Prometheus metrics (prom-client), one registry per daemon so tests can run
 * several daemons in one process. Names per docs/PROTOCOL.md section 4.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { REJECT_REASONS, type RejectReason } from '../protocol/decode.js';
import type { WorkerState } from '../protocol/schemas.js';
import { LOOP_SAMPLE_MS, type LoopDelay } from './http/event-loop.js';

export type PingMetricOutcome = 'accepted' | 'resync' | 'throttled' | 'too_large' | 'rejected' | 'failed';

export interface MetricsSources {
  workersByState(): Record<WorkerState, number>;
  currentIntervalMs(): number;
  tombstones(): number;
  /** Reports of replaced instances dropped to bound memory (cumulative, the registry's count). */
  droppedDisplaced(): number;
  /** Retirements evicted before their retention (cumulative, the registry's count). */
  tombstonesEvictedEarly(): number;
}

export class Metrics {
  readonly registry = new Registry();
  readonly beatsAccepted: Counter;
  readonly beatsRejected: Counter<'reason'>;
  readonly leaves: Counter<'phase' | 'result'>;
  readonly pings: Counter<'outcome'>;
  readonly pingDuration: Histogram;
  readonly pingBytes: Counter;
  readonly pingModes: Counter<'mode'>;
  /** Entries the platform refused alone with a 413: dropped from retries, by their state. */
  readonly entriesRejected: Counter<'state'>;
  readonly transitions: Counter<'kind'>;
  readonly httpRequests: Counter<'route' | 'status'>;
  readonly instanceConflicts: Counter;
  private loopDelay: (() => LoopDelay) | undefined;

  constructor(sources: MetricsSources, opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: LOOP_SAMPLE_MS });
    this.beatsAccepted = new Counter({ name: 'hbagg_beats_accepted_total', help: 'Beats accepted', registers });
    this.beatsRejected = new Counter({
      name: 'hbagg_beats_rejected_total',
      help: 'Beats rejected, by reason',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of REJECT_REASONS) this.beatsRejected.inc({ reason }, 0);
    this.leaves = new Counter({
      name: 'hbagg_leaves_total',
      help: 'Shutdown announcements, by phase and result',
      labelNames: ['phase', 'result'],
      registers,
    });
    this.pings = new Counter({
      name: 'hbagg_pings_total',
      help: 'Ping requests sent to the platform, by outcome',
      labelNames: ['outcome'],
      registers,
    });
    this.pingDuration = new Histogram({
      name: 'hbagg_ping_duration_seconds',
      help: 'Duration of ping requests to the platform',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.pingBytes = new Counter({ name: 'hbagg_ping_bytes_total', help: 'Bytes of ping bodies sent', registers });
    this.pingModes = new Counter({
      name: 'hbagg_ping_parts_total',
      help: 'Ping requests sent, by mode (full, delta; v1 when deltas are off)',
      labelNames: ['mode'],
      registers,
    });
    this.entriesRejected = new Counter({
      name: 'hbagg_ping_entries_rejected_total',
      help: 'Ping entries the platform refused alone as too large (413), by state; they are not retried',
      labelNames: ['state'],
      registers,
    });
    this.transitions = new Counter({
      name: 'hbagg_transitions_total',
      help: 'Worker state transitions, by kind',
      labelNames: ['kind'],
      registers,
    });
    this.httpRequests = new Counter({
      name: 'hbagg_http_requests_total',
      help: 'Requests answered by the HTTP interface, by route and status',
      labelNames: ['route', 'status'],
      registers,
    });
    this.instanceConflicts = new Counter({
      name: 'hbagg_instance_conflicts_total',
      help: 'Beats from an instance that a newer instance of the same worker replaced (two processes claiming one worker id); dropped',
      registers,
    });
    // The registry counts these (it is pure); they are read at scrape time.
    new Counter({
      name: 'hbagg_lost_reports_dropped_total',
      help: 'Reports (lost, stopped, draining) of replaced instances dropped unsent, by reason: too_many_replaced = more than max_workers waited for an accepted ping',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        this.inc({ reason: 'too_many_replaced' }, sources.droppedDisplaced());
      },
    });
    new Counter({
      name: 'hbagg_tombstones_evicted_early_total',
      help: 'Retired instances forgotten before tombstone_retention_ms because max_tombstones was reached (their beats are no longer suppressed)',
      registers,
      collect() {
        this.reset();
        this.inc(sources.tombstonesEvictedEarly());
      },
    });
    const loop = () => this.loopDelay?.();
    new Gauge({
      name: 'hbagg_event_loop_delay_p99_seconds',
      help: 'Event-loop delay beyond the sampling period, 99th percentile over the last window (perf_hooks.monitorEventLoopDelay)',
      registers,
      collect() {
        const d = loop();
        if (d) this.set(d.p99Ms / 1000);
      },
    });
    new Gauge({
      name: 'hbagg_event_loop_delay_max_seconds',
      help: 'Longest event-loop delay over the last window',
      registers,
      collect() {
        const d = loop();
        if (d) this.set(d.maxMs / 1000);
      },
    });
    new Gauge({
      name: 'hbagg_workers',
      help: 'Tracked workers, by state',
      labelNames: ['state'],
      registers,
      collect() {
        for (const [state, n] of Object.entries(sources.workersByState())) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'hbagg_ping_interval_seconds',
      help: 'Current gap between quiet pings',
      registers,
      collect() {
        this.set(sources.currentIntervalMs() / 1000);
      },
    });
    new Gauge({
      name: 'hbagg_tombstones',
      help: 'Retired instances remembered for suppression',
      registers,
      collect() {
        this.set(sources.tombstones());
      },
    });
  }

  /** Where the event-loop delay gauges read from (the daemon owns the monitor; /livez reads it too). */
  eventLoop(source: () => LoopDelay): void {
    this.loopDelay = source;
  }

  rejected(reason: RejectReason): void {
    this.beatsRejected.inc({ reason });
  }
}
