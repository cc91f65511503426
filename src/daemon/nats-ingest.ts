/**
 * The NATS edge: one connection that reconnects forever, callback
 * subscriptions on `<prefix>.beat.*` and `<prefix>.leave.*`, and a readiness
 * flag that follows the connection's status events.
 */
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, type NatsConnection, type NodeConnectionOptions, type Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { NatsConfig } from '../config/types.js';
import { wildcard, workerFromSubject } from '../protocol/subjects.js';
import { redactUrl } from '../util/redact-url.js';
import type { Intake } from './intake.js';
import { OutageLog } from './outage-log.js';

const encoder = new TextEncoder();

/** The connection options for `cfg`: reconnect forever, and every auth and TLS setting of the config. */
export function natsConnectOptions(c: NatsConfig): NodeConnectionOptions {
  return {
    servers: c.servers,
    name: c.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    waitOnFirstConnect: true,
    user: c.user,
    pass: c.pass,
    token: c.token,
    authenticator: c.credsFile ? credsAuthenticator(readFileSync(c.credsFile)) : undefined,
    tls: c.tlsCaFile ? { caFile: c.tlsCaFile } : undefined,
  };
}

export type NatsState = 'connecting' | 'ready' | 'disconnected' | 'draining' | 'closed';

/** What else lives on the connection (the daemon's `hbagg` service and shared-subject guard). */
export interface NatsPresence {
  /** On the first connection, before the beat subscriptions; a throw stops the start. */
  beforeSubscribe(nc: NatsConnection): Promise<void>;
  /** Connected and subscribed (again). */
  ready(nc: NatsConnection): Promise<void>;
  /** At stop, before the drain: leave discovery first. */
  stop(): void;
}

export class NatsIngest {
  private nc: NatsConnection | undefined;
  private subs: Subscription[] = [];
  private _state: NatsState = 'connecting';
  private stopping = false;
  private wake: (() => void) | undefined;
  /** Unreachable NATS is otherwise silent (connect() just waits): a rate-limited warning says so. */
  private readonly outage: OutageLog;
  private watch: NodeJS.Timeout | undefined;
  private readonly watchEveryMs: number;
  private readonly presence: NatsPresence | undefined;

  constructor(
    private readonly cfg: NatsConfig,
    private readonly intake: Intake,
    private readonly log: Logger,
    /** Told of every state change (the daemon stops measuring silence while disconnected). */
    private readonly onState?: (next: NatsState) => void,
    opts: { outageLogEveryMs?: number; presence?: NatsPresence } = {},
  ) {
    this.presence = opts.presence;
    this.outage = new OutageLog({ log, everyMs: opts.outageLogEveryMs });
    this.watchEveryMs = Math.min(1_000, opts.outageLogEveryMs ?? 1_000);
  }

  /** The configured servers as logs may show them. */
  private get servers(): string[] {
    return this.cfg.servers.map(redactUrl);
  }

  /** Checked every second (from the first second on): not connected means a warning, rate-limited. */
  private startWatch(): void {
    this.watch = setInterval(() => {
      if (this.stopping || this._state === 'ready') return;
      this.outage.down({ servers: this.servers, state: this._state }, 'nats is not reachable; retrying');
    }, this.watchEveryMs);
    this.watch.unref();
  }

  get state(): NatsState {
    return this._state;
  }

  /** Subscribed and connected: what /readyz reports. */
  get ready(): boolean {
    return this._state === 'ready';
  }

  get connection(): NatsConnection | undefined {
    return this.nc;
  }

  private setState(next: NatsState, detail?: Record<string, unknown>): void {
    if (next === this._state) return;
    this.log.info({ from: this._state, to: next, ...detail }, `nats ${next}`);
    this._state = next;
    if (next === 'ready') this.outage.up({ servers: this.servers, ...detail }, 'nats is reachable again');
    if (next === 'ready' && this.nc) void this.presence?.ready(this.nc);
    this.onState?.(next);
  }

  /**
   * Connects (waiting for a first server if none answers yet) and subscribes.
   * A first connection the server refuses (bad credentials, a TLS mismatch)
   * is retried too, forever, until `stop()`: fixing the server must be enough.
   */
  async start(): Promise<void> {
    const c = this.cfg;
    this.startWatch();
    for (let attempt = 1; this.nc === undefined; attempt++) {
      try {
        this.nc = await connect(natsConnectOptions(c));
      } catch (err) {
        if (this.stopping) return;
        const retryMs = Math.min(500 * attempt, 5_000);
        this.log.error({ err, attempt, retry_in_ms: retryMs }, 'nats connection refused; retrying');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, retryMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        if (this.stopping) return;
      }
    }
    if (this.stopping) {
      await this.nc.close().catch(() => undefined);
      return;
    }
    void this.watchStatus(this.nc);
    await this.presence?.beforeSubscribe(this.nc);
    if (this.stopping) return;
    const prefix = c.subjectPrefix;
    this.subs.push(
      this.nc.subscribe(wildcard(prefix, 'beat'), {
        callback: (err, msg) => {
          if (err) return;
          this.intake.beatBytes(msg.data, workerFromSubject(msg.subject, prefix, 'beat'), msg.subject);
        },
      }),
      this.nc.subscribe(wildcard(prefix, 'leave'), {
        callback: (err, msg) => {
          if (err) return;
          const worker = workerFromSubject(msg.subject, prefix, 'leave');
          this.intake.leaveBytes(msg.data, worker, msg.subject).then(
            (reply) => msg.reply && msg.respond(encoder.encode(JSON.stringify(reply))),
            (e: unknown) => {
              this.log.error({ err: e, subject: msg.subject }, 'leave failed');
              if (msg.reply) msg.respond(encoder.encode(JSON.stringify({ ok: false, error: `internal error: ${String(e)}` })));
            },
          );
        },
      }),
    );
    // A flush round trip proves the server has the subscriptions.
    await this.nc.flush();
    this.setState('ready', { server: this.nc.getServer() });
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') this.setState('disconnected', { server: s.server });
      else if (s.type === 'reconnect') this.setState('ready', { server: s.server });
      else if (s.type === 'close') this.setState('closed');
    }
  }

  /** Stops taking input: drains the subscriptions (messages already received are processed), then closes. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.presence?.stop();
    clearInterval(this.watch);
    this.wake?.();
    const nc = this.nc;
    if (!nc || nc.isClosed()) return;
    this.setState('draining');
    try {
      await nc.drain();
    } catch (err) {
      this.log.warn({ err }, 'nats drain failed; closing');
      await nc.close().catch(() => undefined);
    }
    this.setState('closed');
  }
}
