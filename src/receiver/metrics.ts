/** The receiver's metrics, in a registry of its own (mounting it never collides with the host's metrics). */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { NodeRecord } from './record.js';

export type StoreOp = 'read' | 'write' | 'publish';

export interface ReceiverMetrics {
  readonly registry: Registry;
  readonly applied: Counter;
  readonly duplicates: Counter;
  readonly conflicts: Counter;
  readonly expired: Counter;
  readonly forgotten: Counter;
  readonly rejected: Counter<'status'>;
  readonly unavailable: Counter;
  readonly publishFailures: Counter;
  readonly storeOps: Counter<'op'>;
  readonly applySeconds: Histogram;
}

export function createMetrics(records: () => Iterable<{ record: NodeRecord }>): ReceiverMetrics {
  const registry = new Registry();
  const registers = [registry];
  // Read from the records at each scrape.
  new Gauge({
    name: 'hbagg_receiver_nodes', help: 'Nodes this replica knows of, by state', labelNames: ['state'], registers,
    collect() {
      const counts = { alive: 0, expired: 0, final: 0 };
      for (const { record } of records()) counts[record.state]++;
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
    },
  });
  return {
    registry,
    applied: new Counter({ name: 'hbagg_receiver_pings_applied_total', help: 'Pings (parts) applied to the ledger by this replica', registers }),
    duplicates: new Counter({ name: 'hbagg_receiver_duplicates_total', help: 'Pings dropped because their batch id was applied already', registers }),
    conflicts: new Counter({ name: 'hbagg_receiver_conflicts_total', help: 'Writes retried because another replica updated the node first', registers }),
    expired: new Counter({ name: 'hbagg_receiver_leases_expired_total', help: 'Node leases this replica declared expired', registers }),
    forgotten: new Counter({ name: 'hbagg_receiver_nodes_forgotten_total', help: 'Expired or final nodes deleted from the store after forgetNodesAfterMs', registers }),
    rejected: new Counter({ name: 'hbagg_receiver_rejected_total', help: 'Requests answered 4xx, by status', labelNames: ['status'], registers }),
    unavailable: new Counter({ name: 'hbagg_receiver_store_unavailable_total', help: 'Pings answered 503 because the store did not answer', registers }),
    publishFailures: new Counter({ name: 'hbagg_receiver_publish_failures_total', help: 'Event publications that failed (kept in the node record and retried)', registers }),
    storeOps: new Counter({ name: 'hbagg_receiver_store_ops_total', help: 'Store operations, by kind', labelNames: ['op'], registers }),
    applySeconds: new Histogram({
      name: 'hbagg_receiver_apply_seconds', help: 'Time to apply one ping, store round trips included', registers,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    }),
  };
}
