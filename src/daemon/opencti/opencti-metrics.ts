/**
 * The OpenCTI adapter's own metrics, on the daemon's metrics registry:
 * connector pings by outcome and connectors by state. Requests themselves
 * are counted by `hbagg_pings_total` and `hbagg_ping_duration_seconds`.
 */
import { Counter, Gauge } from 'prom-client';
import type { Metrics } from '../metrics.js';

export const CONNECTOR_PING_OUTCOMES = ['ok', 'unknown', 'rejected', 'failed', 'throttled'] as const;
export type ConnectorPingOutcome = (typeof CONNECTOR_PING_OUTCOMES)[number];

export const CONNECTOR_STATES = ['pinged', 'pending', 'unknown', 'rejected', 'stopped'] as const;
export type ConnectorState = (typeof CONNECTOR_STATES)[number];

export class OpenCtiMetrics {
  readonly connectorPings: Counter<'outcome'>;
  readonly stateReads: Counter<'outcome'>;
  readonly deletes: Counter<'outcome'>;

  constructor(metrics: Metrics, connectorsByState: () => Record<ConnectorState, number>) {
    const registers = [metrics.registry];
    this.connectorPings = new Counter({
      name: 'hbagg_opencti_connector_pings_total',
      help: 'pingConnector calls sent on connectors\' behalf, by outcome (ok, unknown id, rejected, request failed, throttled)',
      labelNames: ['outcome'],
      registers,
    });
    for (const outcome of CONNECTOR_PING_OUTCOMES) this.connectorPings.inc({ outcome }, 0);
    this.stateReads = new Counter({
      name: 'hbagg_opencti_state_reads_total',
      help: 'connector(id) { connector_state } reads before a first ping, by outcome',
      labelNames: ['outcome'],
      registers,
    });
    this.deletes = new Counter({
      name: 'hbagg_opencti_connector_deletes_total',
      help: 'deleteConnector calls (platform.opencti.delete_on_stop), by outcome',
      labelNames: ['outcome'],
      registers,
    });
    new Gauge({
      name: 'hbagg_opencti_connectors',
      help: 'Connectors by state: pinged (last ping ok), pending (no answer yet), unknown (id not on the platform), rejected, stopped (no live replica)',
      labelNames: ['state'],
      registers,
      collect() {
        for (const [state, n] of Object.entries(connectorsByState())) this.set({ state }, n);
      },
    });
  }
}
