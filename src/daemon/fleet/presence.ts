/**
 * The daemon on the bus, next to its beats: the shared-subject guard and the
 * NATS micro service `hbagg` (endpoints `hbagg.<node>.workers` and
 * `hbagg.<node>.status`; `$SRV.PING|INFO|STATS` discovery).
 *
 * Lifecycle: the guard runs once the first connection is up, before the beat
 * subscriptions; the service registers when NATS is ready; the client
 * restores both subscriptions after a reconnect (re-registered if the
 * connection is a new one); `stop()` comes first at shutdown, so a stopping
 * daemon no longer shows in discovery.
 */
import type { AddressInfo } from 'node:net';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { HealthCheck } from '../health.js';
import { statusBody, workersReply, type StatusDeps, type WorkersDeps } from './endpoints.js';
import { MicroService } from './micro.js';
import { TwinGuard } from './twin-guard.js';

export const SERVICE_NAME = 'hbagg';

export interface PresenceDeps extends StatusDeps {
  log: Logger;
  workers: Omit<WorkersDeps, 'node'>;
}

/** An endpoint subject of one node (a node id may hold dots, which would add tokens: they become `_`). */
export function endpointSubject(node: string, endpoint: string): string {
  return `${SERVICE_NAME}.${node.replace(/[.*>\s]/g, '_')}.${endpoint}`;
}

/**
 * `http.expose_meta` (added with the /v1/workers hardening): read without
 * depending on the key's presence, so both changes merge in either order.
 */
export function exposesMeta(http: object): boolean {
  return 'exposeMeta' in http && http.exposeMeta === true;
}

/** `host:port` the HTTP interface is bound to (the real port when configured as 0). */
export function boundAddress(a: AddressInfo | undefined, configured: string): string {
  if (!a) return configured;
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

export class FleetPresence {
  readonly guard: TwinGuard;
  private service: { nc: NatsConnection; micro: MicroService } | undefined;
  private stopped = false;

  constructor(private readonly d: PresenceDeps) {
    this.guard = new TwinGuard({
      prefix: d.prefix,
      log: d.log,
      self: () => ({ node: d.info.node, instance: d.info.instance, version: d.info.version, http: d.httpAddress() }),
    });
  }

  /** The NATS edge calls this with a new connection, before it subscribes to beats. */
  beforeSubscribe(nc: NatsConnection): Promise<void> {
    return this.guard.guardStart(nc);
  }

  /** NATS is (again) connected and subscribed on `nc`: make sure the service is registered there. */
  async ready(nc: NatsConnection | undefined): Promise<void> {
    if (this.stopped || !nc || nc.isClosed()) return;
    if (this.service?.nc === nc && !this.service.micro.isStopped) return;
    this.service?.micro.stop();
    const { info } = this.d;
    const micro = new MicroService(
      nc,
      {
        name: SERVICE_NAME,
        version: info.version,
        description: 'hbagg heartbeat aggregator',
        metadata: {
          node: info.node,
          subject_prefix: this.d.prefix,
          instance: info.instance,
          http: this.d.httpAddress(),
        },
      },
      [
        { name: 'workers', subject: endpointSubject(info.node, 'workers'), handler: (req) => workersReply({ node: info.node, ...this.d.workers }, req) },
        { name: 'status', subject: endpointSubject(info.node, 'status'), handler: () => ({ ok: true, body: statusBody(this.d) }) },
      ],
    );
    this.service = { nc, micro };
    try {
      await micro.ready();
      this.d.log.info({ service: SERVICE_NAME, id: micro.id, subjects: ['workers', 'status'].map((e) => endpointSubject(info.node, e)) }, 'nats service registered');
    } catch (err) {
      // The client re-sends the subscriptions after a reconnect; nothing to undo.
      this.d.log.warn({ err }, 'nats service registration not confirmed yet');
    }
  }

  /** The micro service, once registered (tests read its id and counters). */
  get micro(): MicroService | undefined {
    return this.service?.micro;
  }

  healthCheck(): HealthCheck {
    return this.guard.healthCheck();
  }

  /** Leaves discovery and stops probing; safe to call twice. */
  stop(): void {
    this.stopped = true;
    this.service?.micro.stop();
    this.guard.stop();
  }
}
