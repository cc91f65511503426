/**
 * The composition root: builds the core and its edges from one config,
 * starts them in order and stops them in the reverse order (stop taking
 * input, flush what is owed, close connections), each step in its own
 * try/catch so one failure does not skip the rest.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import type { HbaggConfig } from '../config/types.js';
import type { DaemonInfo } from '../core/batch.js';
import { Pacer } from '../core/pacer.js';
import { Registry } from '../core/registry.js';
import { settleWithin } from '../util/index.js';
import type { Health } from './health.js';
import { boundAddress, exposesMeta, FleetPresence } from './fleet/presence.js';
import { SharedSubjectError } from './fleet/twin-guard.js';
import { daemonHealth } from './health-checks.js';
import { HttpServer } from './http-server.js';
import { Intake } from './intake.js';
import { Journal } from './journal.js';
import { Metrics } from './metrics.js';
import { NatsIngest } from './nats-ingest.js';
import { Pinger } from './pinger.js';
import { PlatformClient } from './platform-client.js';
import { RejectLog } from './reject-log.js';
import { RunClock } from './run-clock.js';
import { registerRoutes } from './routes.js';

/** Lifecycle of a daemon; every change is logged by `state`'s setter. */
export type DaemonState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

const TICK_MS = 100;
/** Longest the first ping waits for NATS and the shared-subject probe. */
const FIRST_PING_HOLD_MS = 2_000;

export class Daemon {
  readonly info: DaemonInfo;
  readonly clock = new RunClock(TICK_MS, 1_000);
  readonly registry: Registry;
  readonly pacer: Pacer;
  readonly metrics: Metrics;
  readonly intake: Intake;
  readonly pinger: Pinger;
  readonly nats: NatsIngest;
  readonly http: HttpServer;
  /** Unaccepted `stopped`/`lost` entries, durable in the state directory. */
  readonly journal: Journal;
  /** The /healthz checks (replaceable: tests make one hang). */
  readonly health: Health;
  /** The NATS micro service `hbagg` and the shared-subject guard. */
  readonly fleet: FleetPresence;
  /** Resolves with the reason if the daemon must not go on (another daemon shares its beat subjects). */
  readonly failed: Promise<Error>;
  private failure: Error | undefined;
  private fail: (err: Error) => void = () => undefined;
  private readonly rejects: RejectLog;
  private _state: DaemonState = 'created';
  private ticker: NodeJS.Timeout | undefined;
  private tasks: ScheduledTask[] = [];
  private closing: Promise<void> | undefined;
  private natsStarting: Promise<void> | undefined;

  constructor(
    readonly config: HbaggConfig,
    readonly log: Logger,
  ) {
    const c = config;
    if (!c.platform.url) throw new Error('platform.url is required to run the daemon');
    this.info = { node: c.nodeId, instance: randomBytes(8).toString('hex'), version: VERSION, startedAt: Date.now() };
    this.registry = new Registry(c.workers);
    this.pacer = new Pacer({
      ...c.flush,
      requestTimeoutMs: c.platform.timeoutMs,
      maxRetryAfterMs: c.platform.maxRetryAfterMs,
    });
    this.metrics = new Metrics({
      workersByState: () => this.registry.countByState(),
      currentIntervalMs: () => this.pacer.currentIntervalMs(),
      tombstones: () => this.registry.tombstoneCount(),
    });
    this.rejects = new RejectLog(log);
    this.journal = new Journal({
      dir: c.stateDir, log, instance: this.info.instance, source: () => this.registry.unackedTerminals(),
      retired: () => this.registry.retiredInstances(this.clock.listeningNow()),
      retentionMs: c.workers.tombstoneRetentionMs,
      maxRetired: c.workers.maxTombstones,
    });
    const client = new PlatformClient({
      url: c.platform.url,
      token: c.platform.token,
      timeoutMs: c.platform.timeoutMs,
      userAgent: `hbagg/${VERSION}`,
    });
    this.pinger = new Pinger({
      info: this.info, registry: this.registry, pacer: this.pacer, client, clock: this.clock.now,
      registryClock: this.clock.listeningNow,
      metrics: this.metrics, log, maxBatchWorkers: c.platform.maxBatchWorkers,
      requestTimeoutMs: c.platform.timeoutMs,
      onAccepted: () => this.persistSoon(),
      // Never report a terminal state that a crash could take back; a slow or failing disk delays a ping by 1 s at most.
      beforeSend: () => withDeadline(this.journal.sync().catch(() => undefined), 1_000),
    });
    this.intake = new Intake({
      registry: this.registry, clock: this.clock.listeningNow, metrics: this.metrics, rejects: this.rejects, log,
      onTransition: (kind) => {
        this.pinger.urgent();
        // A restart can turn the old instance `lost`; a return takes a `lost` back.
        if (kind === 'restarted' || kind === 'returned') this.persistSoon();
      },
      retired: (worker, instance, as, at) => this.journal.retire(worker, instance, as, at),
      persist: () => this.journal.sync(),
    });
    this.failed = new Promise<Error>((resolve) => (this.fail = (err) => resolve((this.failure ??= err))));
    this.fleet = new FleetPresence({
      info: this.info, prefix: c.nats.subjectPrefix, log, registry: this.registry, pacer: this.pacer,
      pinger: this.pinger, journal: this.journal, now: this.clock.now,
      httpAddress: () => boundAddress(this.http.address(), c.http.listen),
      twin: () => this.fleet.guard.twin,
      workers: { registry: this.registry, token: c.http.token, exposeMeta: exposesMeta(c.http) },
    });
    this.nats = new NatsIngest(c.nats, this.intake, log, (state) => {
      if (state === 'disconnected') this.clock.deaf();
      else if (state === 'ready') {
        const ms = this.clock.hearing();
        if (ms > 0) this.log.info({ deaf_ms: Math.round(ms) }, 'nats back; the time it was away does not count toward loss');
        void this.fleet.ready(this.nats.connection);
      }
    }, (nc) => this.fleet.beforeSubscribe(nc));
    this.http = new HttpServer(log);
    this.health = daemonHealth(this, [this.fleet.healthCheck()]);
    registerRoutes(this.http, this);
  }

  get state(): DaemonState {
    return this._state;
  }

  private set state(next: DaemonState) {
    this.log.info({ from: this._state, to: next }, `daemon ${next}`);
    this._state = next;
  }

  /** Listens on HTTP, starts pinging, and connects to NATS in the background (readiness follows). */
  async start(): Promise<void> {
    this.state = 'starting';
    try {
      // Before anything can change the registry: lock the state dir, restore what the platform is owed.
      const owed = await this.journal.open();
      const now = this.clock.listeningNow();
      const retired = this.journal
        .takeRetired()
        .map((r) => ({ worker: r.worker, instance: r.instance, as: r.as, ageMs: now.wall - r.at }));
      this.registry.restoreTombstones(retired, now);
      this.registry.restore(owed, now);
      if (owed.length > 0) this.log.info({ entries: owed.length }, 'restored unaccepted terminal states');
      if (retired.length > 0) this.log.info({ instances: retired.length }, 'restored retired instances (still suppressed)');
    } catch (err) {
      this.state = 'failed';
      throw err;
    }
    try {
      const addr = await this.http.listen(this.config.http.host, this.config.http.port);
      this.log.info({ address: addr.address, port: addr.port }, 'http listening');
    } catch (err) {
      this.state = 'failed';
      throw new Error(`cannot listen on ${this.config.http.listen}: ${(err as Error).message}`);
    }
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    this.scheduleHousekeeping();
    this.natsStarting = this.nats.start().catch((err: unknown) => {
      if (err instanceof SharedSubjectError) {
        this.log.fatal({ twin: err.twin }, err.message);
        this.state = 'failed';
        this.fail(err);
      } else this.log.error({ err }, 'nats connection failed');
    });
    // The first ping waits for the subject-space probe, briefly: a daemon that must refuse never
    // announces its node. With NATS away the node's lease still goes out, FIRST_PING_HOLD_MS late.
    void settleWithin(this.natsStarting, FIRST_PING_HOLD_MS).then(() => {
      if (this._state === 'running' && !this.failure) this.pinger.start();
    });
    this.state = 'running';
    this.log.info({ node: this.info.node, instance: this.info.instance, version: VERSION }, 'hbagg running');
  }

  /** Resolves once the first NATS connection and subscriptions are up. */
  async natsReady(): Promise<void> {
    await this.natsStarting;
    if (this.failure) throw this.failure;
  }

  private tick(): void {
    const stalled = this.clock.sample();
    if (stalled > 0) this.log.warn({ stalled_ms: Math.round(stalled) }, 'event loop stalled; the stalled time does not count toward loss');
    const losses = this.registry.detectLoss(this.clock.listeningNow());
    if (losses.length === 0) return;
    for (const l of losses) {
      this.metrics.transitions.inc({ kind: 'lost' });
      this.log.info(l, 'worker lost');
    }
    this.pinger.urgent();
    this.persistSoon();
  }

  /** Journals terminal states (and acceptances) in the next group commit, without waiting for it. */
  private persistSoon(): void {
    this.journal.sync().catch((err: unknown) => this.log.error({ err }, 'state journal write failed'));
  }

  private scheduleHousekeeping(): void {
    const h = this.config.housekeeping;
    this.tasks.push(
      cron.schedule(h.summaryCron, () => this.logSummary(), { name: 'summary', noOverlap: true }),
      cron.schedule(h.pruneCron, () => this.prune(), { name: 'prune', noOverlap: true }),
      cron.schedule(h.compactCron, () => this.journal.compact().catch(() => undefined), { name: 'compact', noOverlap: true }),
    );
  }

  private prune(): void {
    const pruned = this.registry.prune(this.clock.listeningNow());
    if (pruned.tombstones + pruned.lost > 0) this.log.debug(pruned, 'pruned');
  }

  private lastSummary = { beats: 0, pings: 0 };

  private async logSummary(): Promise<void> {
    const value = async (m: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> }) =>
      (await m.get()).values;
    const beats = (await value(this.metrics.beatsAccepted)).reduce((n, v) => n + v.value, 0);
    const pings = (await value(this.metrics.pings)).reduce((n, v) => n + v.value, 0);
    const rejected = Object.fromEntries(
      (await value(this.metrics.beatsRejected)).filter((v) => v.value > 0).map((v) => [String(v.labels.reason), v.value]),
    );
    this.log.info(
      {
        beats_in: beats - this.lastSummary.beats,
        pings_out: pings - this.lastSummary.pings,
        workers: this.registry.countByState(),
        rejected_total: rejected,
        interval_ms: this.pacer.currentIntervalMs(),
      },
      'summary',
    );
    this.lastSummary = { beats, pings };
  }

  /** Stops within `shutdown_timeout_ms` whatever the platform does. Safe to call twice. */
  stop(): Promise<void> {
    this.closing ??= this.doStop();
    return this.closing;
  }

  private async doStop(): Promise<void> {
    // A daemon that failed to start (say, its state dir is locked by another) never pinged: no final ping.
    // A daemon refused for sharing its subjects says no goodbye for a node it never served.
    const started = this._state === 'running' && !this.failure;
    this.state = 'stopping';
    const deadline = this.clock.now().mono + this.config.shutdownTimeoutMs;
    const step = async (name: string, fn: () => unknown) => {
      try {
        await fn();
      } catch (err) {
        this.log.error({ err, step: name }, 'shutdown step failed');
      }
    };
    // Leave discovery first: a stopping daemon is no longer one `hbagg fleet` should list.
    await step('leave fleet', () => this.fleet.stop());
    // Drain first: beats already received are still counted into the final ping.
    await step('drain nats', () => withDeadline(this.nats.stop(), Math.max(0, (deadline - this.clock.now().mono) / 4)));
    await step('stop intake', () => {
      this.intake.open = false;
    });
    await step('housekeeping', () => {
      clearInterval(this.ticker);
      for (const t of this.tasks) t.stop();
    });
    // Leave a little of the budget for closing the listener.
    if (started) await step('final ping', () => this.pinger.stop(deadline - 200));
    await step('close journal', () => this.journal.close());
    await step('close http', () => withDeadline(this.http.close(), 150));
    await step('flush logs', () => this.rejects.flush());
    this.state = 'stopped';
  }
}

/** Resolves when `p` settles or after `ms`, whichever comes first. */
async function withDeadline(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
