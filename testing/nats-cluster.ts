/**
 * A real JetStream cluster of nats-servers on loopback: routes on free ports,
 * one store directory each, a stable `server_name` per member (JetStream
 * clustering needs it, and the cluster name) so a member can be restarted.
 */
import { randomUUID } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startNatsServer, type NatsServerHandle } from './nats-server.js';
import { freePort } from '../src/util/index.js';
import { waitFor } from './wait-for.js';

export interface NatsCluster {
  readonly servers: NatsServerHandle[];
  /** Every member's client URL. */
  readonly urls: string[];
  stop(): Promise<void>;
}

export async function startNatsCluster(size = 3, opts: { readyTimeoutMs?: number } = {}): Promise<NatsCluster> {
  const cluster = `hbagg-${randomUUID().slice(0, 8)}`;
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`).join(',');
  const servers = await Promise.all(
    routePorts.map((p, i) =>
      startNatsServer({
        jetstream: true,
        name: `${cluster}-s${i + 1}`,
        args: ['--cluster_name', cluster, '--cluster', `nats://127.0.0.1:${p}`, '--routes', routes],
      }),
    ),
  );
  const urls = servers.map((s) => s.url);
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
  };
  try {
    await waitForJetStream(urls, opts.readyTimeoutMs ?? 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { servers, urls, stop };
}

/** JetStream answers once the members agree on a meta leader. */
async function waitForJetStream(urls: string[], timeoutMs: number): Promise<void> {
  const nc = await connect({ servers: urls });
  try {
    // Creating the manager asks for the account info: it fails until JetStream is up.
    await waitFor(() => jetstreamManager(nc, { timeout: 2_000 }).then(() => true), { timeoutMs, intervalMs: 250, message: 'JetStream cluster ready' });
  } finally {
    await nc.close();
  }
}
