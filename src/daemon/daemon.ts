/**
 * The composition root: builds the core and its edges from one config,
 * starts them in order and stops them in the reverse order (stop taking
 * input, flush what is owed, close connections), each step in its own
 * try/catch so one failure does not skip the rest.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { HbaggConfig } from '../config/types.js';
import type { DaemonInfo } from '../core/batch.js';
import { Pacer } from '../core/pacer.js';
import { Registry } from '../core/registry.js';
import type { PingWorker } from '../protocol/schemas.js';
import { settleWithin, StepRunner, within } from '../util/index.js';
import { FleetPresence } from './fleet/presence.js';
import { EventLoopMonitor } from './http/event-loop.js';
import type { Health } from './http/health.js';
import { daemonHealth } from './http/health-checks.js';
import { registerRoutes } from './http/routes.js';
import { HttpServer } from './http/server.js';
import { Housekeeping } from './housekeeping.js';
import { warnIfExposed } from './http/exposure.js';
import { Intake } from './intake.js';
import { LossWatch } from './loss-watch.js';
import { Journal } from './journal/journal.js';
import { Metrics } from './metrics.js';
import { NatsIngest } from './nats-ingest.js';
import { createPlatformPinger, type PlatformPinger } from './platform-pinger.js';
import { RejectLog } from './reject-log.js';
import { restoreState } from './restored-state.js';
import { RunClock } from './run-clock.js';
import { readCounters, type DaemonSnapshot, type DaemonState, type DaemonTestHooks } from './snapshot.js';
import { describeStateDirError } from './state-dir-error.js';
import { StormWatch } from './storm-watch.js';

export type { DaemonCounters, DaemonSnapshot, DaemonState, DaemonTestHooks } from './snapshot.js';

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

const TICK_MS = 100;

/**
 * One daemon. Its parts are private: callers see `state`, `start()`,
 * `natsReady()`, `stop()`, the read-only `snapshot()` and `workers()`, and
 * (tests and benches only) `testHooks`.
 */
export class Daemon {
  private readonly info: DaemonInfo;
  private readonly clock = new RunClock(TICK_MS, 1_000);
  private readonly registry: Registry;
  private readonly pacer: Pacer;
  private readonly metrics: Metrics;
  private readonly intake: Intake;
  /** The batched ping (platform.kind "hbagg") or the OpenCTI adapter. */
  private readonly pinger: PlatformPinger;
  private readonly nats: NatsIngest;
  private readonly http: HttpServer;
  /** Unaccepted `stopped`/`lost` entries and live instances, durable in the state directory. */
  private readonly journal: Journal;
  /** The /healthz checks. */
  private readonly health: Health;
  /** Event-loop delay for /livez and /metrics; started and stopped with the daemon. */
  private readonly loop = new EventLoopMonitor();
  private readonly fleet: FleetPresence; // the NATS micro service `hbagg` and the shared-subject guard
  private readonly rejects: RejectLog;
  private readonly storm: StormWatch;
  private readonly housekeeping: Housekeeping;
  private _state: DaemonState = 'created';
  private readonly lossWatch: LossWatch;
  private closing: Promise<void> | undefined;
  private natsStarting: Promise<void> | undefined;

  constructor(
    private readonly config: HbaggConfig,
    private readonly log: Logger,
    /** How often a continuing NATS or platform outage is logged again (default 30 s; tests shorten it). */
    tuning: { outageLogEveryMs?: number } = {},
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
    // What a restart storm drops: counted by the registry, exported and logged (rate-limited).
    const drops = {
      droppedDisplaced: () => this.registry.droppedDisplaced,
      tombstonesEvictedEarly: () => this.registry.tombstonesEvictedEarly,
    };
    this.metrics = new Metrics({
      workersByState: () => this.registry.countByState(),
      currentIntervalMs: () => this.pacer.currentIntervalMs(),
      tombstones: () => this.registry.tombstoneCount(),
      ...drops,
    });
    this.storm = new StormWatch(log, drops, c.workers);
    this.lossWatch = new LossWatch({
      clock: this.clock, registry: this.registry, log,
      onTick: (mono) => this.storm.check(mono),
      onLoss: (losses) => {
        for (const l of losses) {
          this.metrics.transitions.inc({ kind: 'lost' });
          this.log.info(l, 'worker lost');
        }
        this.pinger.urgent();
        this.persistSoon();
      },
    }, TICK_MS);
    this.rejects = new RejectLog(log);
    this.journal = new Journal({
      dir: c.stateDir, log, instance: this.info.instance, source: () => this.registry.durable(),
      retired: () => this.registry.retiredInstances(this.clock.listeningNow()),
      retentionMs: c.workers.tombstoneRetentionMs,
      maxRetired: c.workers.maxTombstones,
    });
    this.pinger = createPlatformPinger(c, {
      info: this.info, registry: this.registry, pacer: this.pacer, clock: this.clock.now, registryClock: this.clock.listeningNow,
      metrics: this.metrics, log, userAgent: `hbagg/${VERSION}`, outageLogEveryMs: tuning.outageLogEveryMs,
      onAccepted: () => this.persistSoon(),
      // Never report a terminal state that a crash could take back; a slow or failing disk delays a ping by 1 s at most.
      beforeSend: async () => void (await settleWithin(this.journal.sync(), 1_000)),
    });
    this.intake = new Intake({
      registry: this.registry, clock: this.clock.listeningNow, metrics: this.metrics, rejects: this.rejects, log,
      onTransition: (kind) => {
        this.pinger.urgent();
        this.lossWatch.wake();
        // A new instance is journaled (so it is reported if it dies while no daemon runs); a restart can turn the
        // old instance `lost`; a return takes a `lost` back.
        if (kind === 'appeared' || kind === 'restarted' || kind === 'returned') this.persistSoon();
      },
      retired: (worker, instance, as, at) => this.journal.retire(worker, instance, as, at),
      persist: () => this.journal.sync(),
      conflict: (worker, stale, current) => this.storm.conflict(worker, stale, current, this.clock.now().mono),
    });
    this.fleet = new FleetPresence({ info: this.info, prefix: c.nats.subjectPrefix, log, registry: this.registry, pacer: this.pacer,
      pinger: this.pinger, journal: this.journal, now: this.clock.now, http: c.http, httpBound: () => this.http.address() });
    this.nats = new NatsIngest(c.nats, this.intake, log, (state) => {
      if (state === 'disconnected') this.clock.deaf();
      else if (state === 'ready') {
        const ms = this.clock.hearing();
        if (ms > 0) this.log.info({ deaf_ms: Math.round(ms) }, 'nats back; the time it was away does not count toward loss');
      }
    }, { ...tuning, presence: this.fleet });
    this.housekeeping = new Housekeeping({
      schedule: c.housekeeping, registry: this.registry, pacer: this.pacer, journal: this.journal,
      metrics: this.metrics, clock: this.clock.listeningNow, log,
    });
    this.http = new HttpServer(log);
    this.health = daemonHealth({ info: this.info, config: c, nats: this.nats, pinger: this.pinger, journal: this.journal }, [this.fleet.healthCheck()]);
    this.metrics.eventLoop(() => this.loop.delay());
    registerRoutes(this.http, {
      node: this.info.node,
      http: c.http,
      state: () => this._state,
      nats: this.nats,
      health: this.health,
      loop: this.loop,
      workers: () => this.registry.snapshot(),
      metrics: this.metrics,
      intake: this.intake,
    });
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
      await restoreState(this.journal, this.registry, this.clock, this.log);
    } catch (err) {
      this.state = 'failed';
      throw describeStateDirError(this.config.stateDir, err);
    }
    // Before the listener: /livez reads it from the first request on.
    this.loop.start();
    try {
      const addr = await this.http.listen(this.config.http.host, this.config.http.port);
      this.log.info({ address: addr.address, port: addr.port }, 'http listening');
      warnIfExposed(this.config.http, this.log);
    } catch (err) {
      this.state = 'failed';
      throw new Error(`cannot listen on ${this.config.http.listen}: ${(err as Error).message}`);
    }
    this.housekeeping.start();
    this.natsStarting = this.nats.start().catch((err: unknown) => {
      if (!this.fleet.refusal) this.log.error({ err }, 'nats connection failed');
    });
    // The first ping waits for the shared-subject probe: a daemon that must refuse never announces its node.
    const begin = () => void (this._state === 'running' && !this.fleet.refusal && this.pinger.start());
    this.fleet.firstPingGate(this.natsStarting).then(begin, begin);
    this.state = 'running';
    // Restored instances may already be owed a loss deadline.
    this.lossWatch.enable();
    this.log.info({ node: this.info.node, instance: this.info.instance, version: VERSION }, 'hbagg running');
  }

  /** Resolves once the first NATS connection and subscriptions are up; rejects if another daemon shares the subjects. */
  async natsReady(): Promise<void> {
    await this.fleet.admitted(this.natsStarting);
  }

  /** A read-only picture of the daemon now: states, counters, addresses (what the demo shows, what tests check). */
  async snapshot(): Promise<DaemonSnapshot> {
    return {
      state: this._state,
      info: { ...this.info },
      http: this.http.address(),
      nats: { ready: this.nats.ready, state: this.nats.state, tls: this.nats.connection?.info?.tls_required === true },
      workers: this.registry.countByState(),
      tracked: this.registry.size,
      intervalMs: this.pacer.currentIntervalMs(),
      stalls: this.clock.stalls,
      lossWatch: this.lossWatch.running,
      journal: { ...this.journal.stats },
      healthRounds: this.health.rounds,
      ...(await readCounters(this.metrics)),
    };
  }

  /** The tracked workers, as GET /v1/workers lists them. */
  workers(): PingWorker[] {
    return this.registry.snapshot();
  }

  /** What only tests and benches do to a daemon; see {@link DaemonTestHooks}. */
  readonly testHooks: DaemonTestHooks = {
    setHealthCheck: (check) => void this.health.set(check),
    route: (method, path, handler) => void this.http.route(method, path, handler),
    onResponse: (observer) => void this.http.onResponse(observer),
    disableStallGuard: () => {
      this.clock.sample = () => 0;
    },
    onNatsBeat: (listener) => {
      const intake = this.intake;
      const take = intake.beatBytes.bind(intake);
      intake.beatBytes = (data, worker, source) => {
        const r = take(data, worker, source);
        listener(r);
        return r;
      };
    },
  };

  /** Journals terminal states (and acceptances) in the next group commit, without waiting for it. */
  private persistSoon(): void {
    this.journal.sync().catch((err: unknown) => this.log.error({ err }, 'state journal write failed'));
  }

  /** Stops within `shutdown_timeout_ms` whatever the platform does. Safe to call twice. */
  stop(): Promise<void> {
    this.closing ??= this.doStop();
    return this.closing;
  }

  private async doStop(): Promise<void> {
    // A daemon that failed to start (its state dir is locked by another, another daemon shares its subjects): no final ping.
    const started = this._state === 'running' && !this.fleet.refusal;
    this.state = 'stopping';
    const deadline = this.clock.now().mono + this.config.shutdownTimeoutMs;
    const steps = new StepRunner({ onError: (step, err) => this.log.error({ err, step }, 'shutdown step failed') });
    // Drain first: beats already received are still counted into the final ping.
    await steps.run('drain nats', () => within(this.nats.stop(), Math.max(0, (deadline - this.clock.now().mono) / 4)));
    await steps.run('stop intake', () => {
      this.intake.open = false;
    });
    await steps.run('housekeeping', () => {
      this.lossWatch.stop();
      this.housekeeping.stop();
    });
    // Leave a little of the budget for closing the listener.
    if (started) await steps.run('final ping', () => this.pinger.stop(deadline - 200));
    await steps.run('close journal', () => this.journal.close());
    await steps.run('close http', () => within(this.http.close(), 150));
    await steps.run('stop event-loop monitor', () => this.loop.stop());
    await steps.run('flush logs', () => this.rejects.flush());
    this.state = 'stopped';
  }
}
