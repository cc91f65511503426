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
import { settleWithin } from '../../util/index.js';
import type { HealthCheck } from '../http/health.js';
import type { NatsPresence } from '../nats-ingest.js';
import { statusBody, workersReply, type StatusDeps, type WorkersDeps } from './endpoints.js';
import { MicroService } from './micro.js';
import { SharedSubjectError, TwinGuard, type Twin } from './twin-guard.js';

export const SERVICE_NAME = 'hbagg';
/** Longest the first ping waits for a NATS connection; once connected, it waits for the probe too (bounded by its window). */
export const FIRST_PING_HOLD_MS = 2_000;

export interface PresenceDeps extends Omit<StatusDeps, 'twin' | 'httpAddress'> {
  log: Logger;
  registry: StatusDeps['registry'] & WorkersDeps['registry'];
  /** The HTTP settings: `listen` (until bound), `token` and `expose_meta` (the rules of GET /v1/workers). */
  http: { listen: string; token?: string; exposeMeta: boolean };
  /** Where the HTTP interface is bound, once it is. */
  httpBound(): AddressInfo | undefined;
}

/** An endpoint subject of one node (a node id may hold dots, which would add tokens: they become `_`). */
export function endpointSubject(node: string, endpoint: string): string {
  return `${SERVICE_NAME}.${node.replace(/[.*>\s]/g, '_')}.${endpoint}`;
}

/** `host:port` the HTTP interface is bound to (the real port when configured as 0). */
export function boundAddress(a: AddressInfo | undefined, configured: string): string {
  if (!a) return configured;
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

export class FleetPresence implements NatsPresence {
  readonly guard: TwinGuard;
  private _refusal: SharedSubjectError | undefined;
  private service: { nc: NatsConnection; micro: MicroService } | undefined;
  private stopped = false;
  private probing: Promise<void> | undefined;
  private readonly status: StatusDeps;
  private readonly workers: WorkersDeps;

  constructor(private readonly d: PresenceDeps) {
    const httpAddress = () => boundAddress(d.httpBound(), d.http.listen);
    this.guard = new TwinGuard({
      prefix: d.prefix,
      log: d.log,
      self: () => ({ node: d.info.node, instance: d.info.instance, version: d.info.version, http: httpAddress() }),
    });
    this.status = { ...d, httpAddress, twin: () => this.guard.twin };
    this.workers = { node: d.info.node, registry: d.registry, token: d.http.token, exposeMeta: d.http.exposeMeta };
  }

  /** The refusal, once the guard made one. */
  get refusal(): SharedSubjectError | undefined {
    return this._refusal;
  }

  /** The NATS edge calls this with a new connection, before it subscribes to beats; throws `SharedSubjectError`. */
  async beforeSubscribe(nc: NatsConnection): Promise<void> {
    try {
      await (this.probing = this.guard.guardStart(nc));
    } catch (err) {
      if (err instanceof SharedSubjectError) {
        this.d.log.fatal({ twin: err.twin }, err.message);
        this._refusal ??= err;
      }
      throw err;
    }
  }

  /**
   * Settles when the first ping may go: NATS is up (the probe passed or
   * refused), or `maxWaitMs` passed before any connection was made (the
   * node's lease must not wait for NATS). A probe under way is waited for.
   */
  async firstPingGate(natsStarting: Promise<unknown>, maxWaitMs = FIRST_PING_HOLD_MS): Promise<void> {
    if (!(await settleWithin(natsStarting, maxWaitMs))) await this.probing?.catch(() => undefined);
  }

  /** Probes now (tests; the guard does it every minute). */
  recheck(nc: NatsConnection | undefined): Promise<Twin | undefined> {
    return nc ? this.guard.recheck(nc) : Promise.resolve(this.guard.twin);
  }

  /** Resolves when `natsStarting` does; rejects with the refusal if the guard made one. */
  async admitted(natsStarting: Promise<unknown> | undefined): Promise<void> {
    await natsStarting;
    if (this._refusal) throw this._refusal;
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
          http: this.status.httpAddress(),
        },
      },
      [
        { name: 'workers', subject: endpointSubject(info.node, 'workers'), handler: (req) => workersReply(this.workers, req) },
        { name: 'status', subject: endpointSubject(info.node, 'status'), handler: () => ({ ok: true, body: statusBody(this.status) }) },
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
