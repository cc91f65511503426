/**
 * The worker side of docs/PROTOCOL.md section 1: a beat on `<prefix>.beat.<worker>`
 * every `intervalMs` plus or minus jitter, with a strictly increasing `seq`,
 * and the Leave announcement. Nothing here throws into the worker's code once
 * constructed: NATS trouble is logged, and beats resume when NATS is back
 * (nats.js buffers publishes while it reconnects).
 */
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import { DEFAULT_DRAIN_TIMEOUT_MS, MAX_REASON_CHARS, PROTOCOL_VERSION, WORKER_ID_PATTERN, type Beat, type Leave, type LeavePhase } from '../protocol/schemas.js';
import { beatSubject, leaveSubject } from '../protocol/subjects.js';
import { within } from '../util/deadline.js';
import { requestLeave, type LeaveResult } from './leave-request.js';
import { errorText, silentLogger, type ClientLogger } from './logger.js';
import { systemScheduler, type Scheduler } from './scheduler.js';
import type { BeatTransport } from './transport.js';
import { cleanSnapshot, type WorkerSnapshot } from './worker-snapshot.js';

/**
 * Lifecycle of a client; every change is logged by `state`'s setter.
 * created -> (connecting ->) beating <-> paused; any -> left (a Leave was sent:
 * never beats again); any -> closed. `failed`: could not connect at all.
 */
export type HeartbeatClientState = 'created' | 'connecting' | 'beating' | 'paused' | 'left' | 'failed' | 'closed';

export interface HeartbeatClientOptions {
  /** The worker id, `^[A-Za-z0-9_-]{1,128}$`; the last token of the subjects. */
  worker: string;
  /** An existing connection (a `NatsConnection` fits); the client never closes it. */
  nc?: BeatTransport;
  /** Without `nc`: where to connect (reconnecting forever). Default `nats://127.0.0.1:4222`. */
  servers?: string | string[];
  /** Without `nc`: more nats.js connect options (auth, TLS, name...). */
  connectOptions?: Omit<NodeConnectionOptions, 'servers'>;
  /** Default `hb`, as the daemon's `nats.subject_prefix`. */
  subjectPrefix?: string;
  /** How often to beat, 100..600000. Default 1000. */
  intervalMs?: number;
  /** Each gap is `intervalMs * (1 ± jitter)`, 0 <= jitter < 1. Default 0.1. */
  jitter?: number;
  /** This process's instance id, 1..64 chars. Default: 16 random hex chars. */
  instance?: string;
  /** Called before each beat for status/inflight/load/meta. If it throws, the beat goes without them. */
  state?: () => WorkerSnapshot;
  /** Default: silent. */
  logger?: ClientLogger;
  /** Clock and timers; tests pass a fake. */
  scheduler?: Scheduler;
  /** Source of jitter in [0, 1); tests pass a fixed one. */
  random?: () => number;
}

export interface LeaveOptions {
  /** Why, for the platform (at most 256 chars; longer is cut). */
  reason?: string;
  /** With `draining`: how long draining may last. Daemon default 30000. */
  drainTimeoutMs?: number;
  /** Bound on waiting for the daemon's reply, retry included. Default 2000. */
  timeoutMs?: number;
}

const DEFAULT_SERVERS = 'nats://127.0.0.1:4222';
const SUBJECT_PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const CLOSE_FLUSH_MS = 2000;
const encoder = new TextEncoder();

export class HeartbeatClient {
  readonly worker: string;
  readonly instance: string;
  readonly intervalMs: number;
  readonly beatSubject: string;
  readonly leaveSubject: string;
  private readonly jitter: number;
  private readonly scheduler: Scheduler;
  private readonly random: () => number;
  private readonly log: ClientLogger;
  private transport: BeatTransport | undefined;
  private ownConnection: NatsConnection | undefined;
  private _state: HeartbeatClientState = 'created';
  private timer: unknown;
  private nextSeq = 0;
  private connecting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private publishFailing = false;
  private stateFailing = false;

  constructor(private readonly opts: HeartbeatClientOptions) {
    if (!WORKER_ID_PATTERN.test(opts.worker)) throw new TypeError(`worker "${opts.worker}" must match ${WORKER_ID_PATTERN}`);
    const prefix = opts.subjectPrefix ?? 'hb';
    if (!SUBJECT_PREFIX.test(prefix)) throw new TypeError(`subjectPrefix "${prefix}" must be dot-separated tokens without wildcards`);
    this.intervalMs = opts.intervalMs ?? 1000;
    if (!Number.isInteger(this.intervalMs) || this.intervalMs < 100 || this.intervalMs > 600_000) {
      throw new RangeError(`intervalMs must be an integer in 100..600000, got ${this.intervalMs}`);
    }
    this.jitter = opts.jitter ?? 0.1;
    if (!(this.jitter >= 0 && this.jitter < 1)) throw new RangeError(`jitter must be in [0, 1), got ${this.jitter}`);
    this.instance = opts.instance ?? randomBytes(8).toString('hex');
    if (this.instance.length < 1 || this.instance.length > 64) throw new RangeError('instance must be 1..64 characters');
    this.worker = opts.worker;
    this.beatSubject = beatSubject(prefix, opts.worker);
    this.leaveSubject = leaveSubject(prefix, opts.worker);
    this.scheduler = opts.scheduler ?? systemScheduler;
    this.random = opts.random ?? Math.random;
    this.log = opts.logger ?? silentLogger;
    this.transport = opts.nc;
  }

  get state(): HeartbeatClientState {
    return this._state;
  }

  private set state(next: HeartbeatClientState) {
    if (next === this._state) return;
    this.log.info({ worker: this.worker, instance: this.instance, from: this._state, to: next }, `heartbeat client ${next}`);
    this._state = next;
  }

  /** The seq the next beat or leave will carry. */
  get seq(): number {
    return this.nextSeq;
  }

  /**
   * Beats now and then every interval. Connects first when no `nc` was given
   * (resolving once connected; waits for a first server). Never rejects.
   */
  start(): Promise<void> {
    if (this._state === 'connecting') return this.connecting ?? Promise.resolve();
    if (this._state !== 'created' && this._state !== 'paused') {
      if (this._state !== 'beating') this.log.warn({ worker: this.worker, state: this._state }, 'start() ignored');
      return Promise.resolve();
    }
    if (this.transport) {
      this.state = 'beating';
      this.beat();
      return Promise.resolve();
    }
    this.state = 'connecting';
    this.connecting = this.connect();
    return this.connecting;
  }

  /** Stops beating without announcing anything (`start()` resumes). For leaving, see `leave()`. */
  stop(): void {
    this.cancelTimer();
    if (this._state === 'beating' || this._state === 'connecting') this.state = 'paused';
  }

  /**
   * Announces `draining` or `stopped`. The beat timer stops first, before the
   * request is even sent, and never starts again. Resolves with the daemon's
   * reply or a failure within `timeoutMs`; never rejects.
   */
  async leave(phase: LeavePhase, opts: LeaveOptions = {}): Promise<LeaveResult> {
    this.cancelTimer();
    if (this._state !== 'closed') this.state = 'left';
    const timeoutMs = opts.timeoutMs ?? 2000;
    const leave: Leave = { v: PROTOCOL_VERSION, worker: this.worker, instance: this.instance, seq: this.nextSeq++, phase };
    if (opts.reason !== undefined) leave.reason = opts.reason.slice(0, MAX_REASON_CHARS);
    if (phase === 'draining') leave.drain_timeout_ms = Math.max(0, Math.round(opts.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS));
    const started = this.scheduler.now();
    if (!this.transport && this.connecting) await this.waitConnected(timeoutMs);
    const remaining = Math.max(1, timeoutMs - (this.scheduler.now() - started));
    const deps = { transport: this.transport, scheduler: this.scheduler, log: this.log };
    const result = await requestLeave(deps, this.leaveSubject, leave, remaining);
    const ctx = { worker: this.worker, instance: this.instance, phase, seq: leave.seq, ms: this.scheduler.now() - started };
    if (result.ok) this.log.info(ctx, `leave acknowledged: ${result.state}`);
    else this.log.warn({ ...ctx, cause: result.cause, error: result.error }, 'leave not acknowledged; going on without it');
    return result;
  }

  /** Stops beating and closes the connection if the client opened it. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.cancelTimer();
    this.state = 'closed';
    const nc = this.ownConnection;
    this.transport = this.opts.nc;
    if (!nc || nc.isClosed()) return;
    // The bound alone never keeps the process alive.
    const unref = {
      setTimeout: (fn: () => void, ms: number) => this.scheduler.setTimeout(fn, ms, { unref: true }),
      clearTimeout: (handle: unknown) => this.scheduler.clearTimeout(handle),
    };
    try {
      // drain() flushes what is buffered (a last leave included) before closing.
      await within(nc.drain(), CLOSE_FLUSH_MS, unref);
    } catch (err) {
      this.log.debug({ err: errorText(err) }, 'nats drain failed; closing');
    }
    if (!nc.isClosed()) await nc.close().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const servers = this.opts.servers ?? DEFAULT_SERVERS;
    try {
      const nc = await connect({
        name: `hbagg-client:${this.worker}`,
        ...this.opts.connectOptions,
        servers,
        maxReconnectAttempts: -1,
        waitOnFirstConnect: true,
      });
      this.ownConnection = nc;
      if (this._state === 'closed') {
        await nc.close().catch(() => undefined);
        return;
      }
      this.transport = nc;
      void this.watchStatus(nc);
      if (this._state === 'connecting') {
        this.state = 'beating';
        this.beat();
      }
    } catch (err) {
      this.log.warn({ worker: this.worker, servers, err: errorText(err) }, 'cannot connect to NATS; no heartbeats will be sent');
      if (this._state === 'connecting') this.state = 'failed';
    }
  }

  private async waitConnected(ms: number): Promise<void> {
    await within(this.connecting ?? Promise.resolve(), ms, this.scheduler);
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    try {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') this.log.warn({ worker: this.worker, server: s.server }, 'nats disconnected; beats are buffered until it reconnects');
        else if (s.type === 'reconnect') this.log.info({ worker: this.worker, server: s.server }, 'nats reconnected');
      }
    } catch {
      // the status iterator ends with the connection
    }
  }

  private beat(): void {
    this.timer = undefined;
    if (this._state !== 'beating') return;
    const fields = this.snapshot();
    // The state callback may have called leave() or stop(): the guard comes after it.
    if (this._state !== 'beating' || !this.transport) return;
    const beat: Beat = {
      v: PROTOCOL_VERSION,
      worker: this.worker,
      instance: this.instance,
      seq: this.nextSeq++,
      interval_ms: this.intervalMs,
      ts: Math.round(this.scheduler.now()),
      ...fields,
    };
    try {
      this.transport.publish(this.beatSubject, encoder.encode(JSON.stringify(beat)));
      if (this.publishFailing) this.log.info({ worker: this.worker, seq: beat.seq }, 'heartbeats are going out again');
      this.publishFailing = false;
    } catch (err) {
      const ctx = { worker: this.worker, seq: beat.seq, err: errorText(err) };
      if (!this.publishFailing) this.log.warn(ctx, 'heartbeat publish failed; will keep trying');
      else this.log.debug(ctx, 'heartbeat publish failed');
      this.publishFailing = true;
    }
    this.schedule();
  }

  private snapshot(): WorkerSnapshot {
    if (!this.opts.state) return {};
    try {
      const { fields, dropped } = cleanSnapshot(this.opts.state());
      if (dropped.length > 0) this.log.debug({ worker: this.worker, dropped }, 'invalid state fields left out of the beat');
      this.stateFailing = false;
      return fields;
    } catch (err) {
      const ctx = { worker: this.worker, err: errorText(err) };
      if (!this.stateFailing) this.log.warn(ctx, 'state callback threw; beating without status fields');
      else this.log.debug(ctx, 'state callback threw');
      this.stateFailing = true;
      return {};
    }
  }

  private schedule(): void {
    const spread = this.jitter * (2 * this.random() - 1);
    const gap = Math.max(1, Math.round(this.intervalMs * (1 + spread)));
    this.timer = this.scheduler.setTimeout(() => this.beat(), gap, { unref: true });
  }

  private cancelTimer(): void {
    if (this.timer === undefined) return;
    this.scheduler.clearTimeout(this.timer);
    this.timer = undefined;
  }
}
