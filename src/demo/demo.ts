/**
 * `hbagg demo`: the whole picture in one process. A NATS server (found or
 * started), the reference receiver as the platform, a real `Daemon`, and
 * simulated workers that beat, get busy, shut down gracefully, crash and
 * restart, following `script.ts` (played by `director.ts`). This module only
 * starts and stops the parts and feeds the view; signals are the CLI's
 * business: it calls `stop()`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino, type Logger } from 'pino';
import { loadConfig } from '../config/index.js';
import { Daemon } from '../daemon/daemon.js';
import { createLogger } from '../daemon/logger.js';
import { startReceiver, type Receiver } from '../receiver/index.js';
import { StepRunner, within } from '../util/index.js';
import { Director } from './director.js';
import { EventFeed } from './event-feed.js';
import { cannotReachNats, findOrStartNats, type NatsSource } from './nats.js';
import { SimWorker } from './sim-worker.js';
import { MAX_INTERVAL_MS, MIN_INTERVAL_MS, type DemoSummary } from './summary.js';
import { Screen, type DemoSnapshot, type ScreenOutput } from './view.js';

export { formatSummary, type DemoSummary } from './summary.js';

/** Lifecycle of a demo run. */
export type DemoState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped';

export interface DemoOptions {
  /** Stop by itself after this long. Default: run until `stop()`. */
  durationMs?: number;
  /** Simulated workers. Default 8. */
  workers?: number;
  /** Use this NATS server instead of looking for one. */
  natsUrl?: string;
  /** Write the daemon's JSON log here (default: no daemon log). */
  logFile?: string;
  /** Where the view goes (default process.stdout). */
  out?: ScreenOutput;
  /** How often simulated workers beat. Default 500. */
  beatIntervalMs?: number;
}

const REFRESH_MS = 250;
/** The daemon's first NATS connection and subscriptions: the demo gives up after this. */
const NATS_READY_MS = 10_000;

/** `stop()` was called before the demo had started: nothing to summarize. */
export class DemoStoppedError extends Error {
  override readonly name = 'DemoStoppedError';
  constructor() {
    super('hbagg demo: stopped before it had started');
  }
}

export class Demo {
  private _state: DemoState = 'created';
  private readonly out: ScreenOutput;
  private readonly workerCount: number;
  private nats: NatsSource | undefined;
  private receiver: Receiver | undefined;
  private daemon: Daemon | undefined;
  private log: Logger | undefined;
  private stateDir: string | undefined;
  private screen: Screen | undefined;
  private sims: SimWorker[] = [];
  private readonly feed = new EventFeed(
    () => this.elapsed(),
    (t, text) => this.screen?.event(t, text),
  );
  private director: Director | undefined;
  private startedAt = 0;
  private refresh: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private starting: Promise<void> | undefined;
  private stopping: Promise<DemoSummary> | undefined;
  /** Aborted by `stop()`: every wait of the start gives up at once. */
  private readonly cancel = new AbortController();
  private resolveDone!: (s: DemoSummary) => void;
  /** Resolves with the summary once the demo has stopped (by `stop()` or its duration). */
  readonly done: Promise<DemoSummary>;

  constructor(private readonly opts: DemoOptions = {}) {
    this.out = opts.out ?? process.stdout;
    this.workerCount = opts.workers ?? 8;
    if (!Number.isInteger(this.workerCount) || this.workerCount < 1 || this.workerCount > 100) {
      throw new RangeError(`workers must be an integer from 1 to 100, got ${this.workerCount}`);
    }
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  get state(): DemoState {
    return this._state;
  }

  /** Finds NATS and starts everything; throws `NatsUnavailableError` when there is no NATS to be had. */
  start(): Promise<void> {
    this.starting ??= this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    this._state = 'starting';
    this.startedAt = performance.now();
    // Before the parts start, so the first events (the node appearing) are shown too.
    this.screen = new Screen(this.out);
    try {
      await this.startParts();
    } catch (err) {
      await this.teardown();
      this.screen.end();
      this._state = 'stopped';
      throw err;
    }
    // stop() was called while starting: it tears down once this returns.
    if (this.stopping) return;
    this._state = 'running';
    this.refresh = setInterval(() => void this.draw(), REFRESH_MS);
    this.director = new Director({
      sims: this.sims,
      elapsed: () => this.elapsed(),
      running: () => this._state === 'running',
      note: (text) => this.feed.note(text),
    });
    this.director.start();
    if (this.opts.durationMs !== undefined) this.deadline = setTimeout(() => void this.stop(), this.opts.durationMs);
    await this.draw();
  }

  /** `p`, unless `stop()` comes first. */
  private until<T>(p: Promise<T>): Promise<T> {
    const signal = this.cancel.signal;
    if (signal.aborted) return Promise.reject(new DemoStoppedError());
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(new DemoStoppedError());
      signal.addEventListener('abort', onAbort, { once: true });
      p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  private async startParts(): Promise<void> {
    this.nats = await this.until(findOrStartNats({ url: this.opts.natsUrl }));
    const how = { given: 'as given', found: 'found running', started: 'started for the demo' }[this.nats.kind];
    this.say(`nats      ${this.nats.url} (${how})`);

    this.receiver = await startReceiver({ onEvent: (e) => this.feed.platform(e) });
    this.say(`platform  ${this.receiver.url}/v1/heartbeats (the reference receiver, in process)`);

    this.stateDir = mkdtempSync(path.join(tmpdir(), 'hbagg-demo-'));
    const prefix = `hbdemo.${randomBytes(4).toString('hex')}`;
    const cfg = loadConfig({
      env: {
        HBAGG_NODE_ID: 'demo-node',
        HBAGG_NATS_URL: this.nats.url,
        HBAGG_SUBJECT_PREFIX: prefix,
        HBAGG_PLATFORM_URL: `${this.receiver.url}/v1/heartbeats`,
        HBAGG_HTTP_LISTEN: '127.0.0.1:0',
        HBAGG_STATE_DIR: this.stateDir,
        HBAGG_MIN_INTERVAL_MS: String(MIN_INTERVAL_MS),
        HBAGG_MAX_INTERVAL_MS: String(MAX_INTERVAL_MS),
        HBAGG_SHUTDOWN_TIMEOUT_MS: '3000',
        HBAGG_LOG_LEVEL: this.opts.logFile ? 'info' : 'silent',
      },
    });
    this.log = this.opts.logFile
      ? createLogger(cfg.logLevel, pino.destination({ dest: this.opts.logFile, sync: false, mkdir: true }))
      : createLogger('silent');
    this.daemon = new Daemon(cfg, this.log);
    await this.daemon.start();
    // The daemon waits for NATS forever (right for a daemon); the demo gives up and says why.
    const ready = await this.until(within(this.daemon.natsReady(), NATS_READY_MS));
    const d = await this.daemon.snapshot();
    if (ready === undefined || !d.nats.ready) {
      throw cannotReachNats(this.nats.url, `the daemon could not connect and subscribe within ${NATS_READY_MS} ms`);
    }
    this.say(`daemon    http://127.0.0.1:${d.http?.port ?? '?'} (try /v1/workers, /metrics), subjects ${prefix}.beat.*`);

    const beatIntervalMs = this.opts.beatIntervalMs ?? 500;
    this.sims = Array.from({ length: this.workerCount }, (_, i) => new SimWorker({
      id: `worker-${i + 1}`,
      servers: this.nats!.url,
      subjectPrefix: prefix,
      intervalMs: beatIntervalMs,
      drainTimeoutMs: 2_500,
    }));
    await this.until(Promise.all(this.sims.map((s) => s.start())));
    this.say(`workers   ${this.workerCount} simulated, each beating every ${beatIntervalMs} ms on its own NATS connection`);
  }

  /** Stops everything, prints the final view and resolves with the summary. Safe to call twice. */
  stop(): Promise<DemoSummary> {
    this.cancel.abort();
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<DemoSummary> {
    await this.starting?.catch(() => undefined);
    this._state = 'stopping';
    clearTimeout(this.deadline);
    this.director?.stop();
    clearInterval(this.refresh);
    const elapsedMs = this.elapsed();
    const beatsSent = this.sims.reduce((n, s) => n + s.beats, 0);
    await this.teardown();
    const summary = await this.summarize(elapsedMs, beatsSent);
    this.screen?.end();
    this._state = 'stopped';
    this.resolveDone(summary);
    return summary;
  }

  /** In order: workers, then the daemon (its final ping), then the receiver and NATS. Each step alone, best effort. */
  private async teardown(): Promise<void> {
    const steps = new StepRunner();
    await steps.run('close workers', () => Promise.all(this.sims.map((s) => s.close())), 3_000);
    await steps.run('finish acts', () => this.director?.settled(), 1_000);
    await steps.run('stop daemon', () => this.daemon?.stop());
    await steps.run('last view', () => this.draw());
    await steps.run('close receiver', () => this.receiver?.close());
    await steps.run('stop nats', () => this.nats?.stop());
    await steps.run('flush log', () => this.log?.flush());
    await steps.run('remove state dir', () => this.stateDir && rmSync(this.stateDir, { recursive: true, force: true }));
  }

  private async summarize(elapsedMs: number, beatsSent: number): Promise<DemoSummary> {
    const stats = this.receiver?.stats();
    const d = await this.daemon?.snapshot();
    return {
      elapsedMs,
      workers: this.workerCount,
      nats: this.nats?.url ?? '-',
      beatsSent,
      beatsIn: d?.beatsAccepted ?? 0,
      pingsOut: stats?.pings ?? 0,
      beatsReported: stats?.beats ?? 0,
      pingsRejected: stats?.rejected ?? 0,
      intervalMs: d?.intervalMs ?? 0,
      transitions: stats?.events ?? {},
    };
  }

  /** Setup lines before the view starts. */
  private say(text: string): void {
    this.out.write(`${text}\n`);
  }

  private async draw(): Promise<void> {
    if (!this.screen || !this.daemon || !this.receiver) return;
    this.screen.show(await this.snapshot());
  }

  /** What the view shows: the daemon's own snapshot, the receiver's counts, the simulated workers, the feed. */
  async snapshot(): Promise<DemoSnapshot> {
    const d = await this.daemon?.snapshot();
    return {
      elapsedMs: this.elapsed(),
      nats: this.nats?.url ?? '-',
      receiverUrl: this.receiver?.url ?? '-',
      daemonUrl: d ? `http://127.0.0.1:${d.http?.port ?? '?'}` : '-',
      workers: d?.workers ?? { active: 0, draining: 0, stopped: 0, lost: 0 },
      beatsIn: d?.beatsAccepted ?? 0,
      pingsOut: this.receiver?.stats().pings ?? 0,
      intervalMs: d?.intervalMs ?? 0,
      minIntervalMs: MIN_INTERVAL_MS,
      maxIntervalMs: MAX_INTERVAL_MS,
      sims: this.sims.map((s) => s.view()),
      recent: this.feed.recent(),
      ending: this._state === 'stopping' || this._state === 'stopped',
    };
  }

  private elapsed(): number {
    return performance.now() - this.startedAt;
  }
}
