/**
 * The ping loop: asks the pacer when, the registry what, sends it through the
 * platform client, and feeds the answer back. One ping at a time; every try
 * is rebuilt from the current state, never replayed.
 */
import type { Logger } from 'pino';
import { buildPing, type DaemonInfo, type PingPart } from '../core/batch.js';
import { DeltaTracker, type DeltaSource } from '../core/delta.js';
import { PROMISE_SLACK_MS, type Pacer, type PingOutcome } from '../core/pacer.js';
import { leaseMs, PartSize, RefusedEntries, REGROW_AFTER_INTERVALS } from '../core/part-size.js';
import { toPingWorker, type Registry } from '../core/registry.js';
import type { Clock, Instant } from '../core/time.js';
import { jsonByteLength } from './json-size.js';
import type { Metrics } from './metrics.js';
import type { PlatformClient, SendResult } from './platform-client.js';
import { PlatformLog } from './platform-log.js';

export interface PingerDeps {
  info: DaemonInfo;
  registry: Registry;
  pacer: Pacer;
  client: PlatformClient;
  clock: Clock;
  /** The clock the registry measures with (skips time the daemon could not hear); default `clock`. */
  registryClock?: Clock;
  metrics: Metrics;
  log: Logger;
  maxBatchWorkers: number;
  /** The platform client's per-request timeout (a promise must cover every part). */
  requestTimeoutMs: number;
  /** `flush.max_interval_ms`: bounds the lease a ping promises. */
  maxIntervalMs: number;
  /** How often a continuing platform outage is logged again (default 30 s). */
  outageLogEveryMs?: number;
  /**
   * Delta pings (contract 1.1): a full ping at least this often (`flush.full_every_ms`);
   * absent when `platform.delta` is `off`: every ping is a v1 ping.
   */
  fullEveryMs?: number;
  /** Called after a ping part is accepted (the journal records what was delivered). */
  onAccepted?(): void;
  /** Awaited before a ping is sent: makes the terminal states it carries durable first (the journal). */
  beforeSend?(): Promise<void>;
}

export interface LastPing {
  atWall: number;
  atMono: number;
  outcome: SendResult['outcome'];
  status?: number;
  error?: string;
}

export class Pinger {
  private seq = 0;
  private readonly partSize: PartSize;
  /** Entries the platform refused alone (413): left out while unchanged. */
  private readonly refused = new RefusedEntries();
  /** Full or delta, and what a delta lists (none with `platform.delta: off`). */
  private readonly delta: DeltaTracker | undefined;
  private readonly platformLog: PlatformLog;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Aborts the ping in flight (shutdown cuts a hanging one short). */
  private abort = new AbortController();
  /** The last ping's result, for /healthz and logs. */
  last: LastPing | undefined;
  /** Wall time of the last accepted ping. */
  lastAcceptedWall: number | undefined;

  constructor(private readonly d: PingerDeps) {
    // The registry tells the tracker of every change a delta must carry.
    this.delta = d.fullEveryMs === undefined ? undefined : new DeltaTracker({ fullEveryMs: d.fullEveryMs });
    if (this.delta !== undefined) d.registry.watch(this.delta);
    this.partSize = new PartSize({ max: d.maxBatchWorkers, regrowAfterMs: REGROW_AFTER_INTERVALS });
    this.platformLog = new PlatformLog({ log: d.log, url: d.client.printableUrl, everyMs: d.outageLogEveryMs });
  }

  /** Starts the loop: the first ping (the node's lease) goes out at once. */
  start(): void {
    this.schedule();
  }

  /** A transition happened: ping within urgent_flush_ms (unless told to wait). */
  urgent(): void {
    if (this.stopped) return;
    this.d.pacer.transition(this.d.clock().mono);
    this.schedule();
  }

  /** Re-arms the timer for the pacer's next due time. */
  schedule(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const due = this.d.pacer.dueAt();
    if (due === Infinity) return;
    const delay = Math.max(0, due - this.d.clock().mono);
    this.timer = setTimeout(() => void this.tick(), Math.min(delay, 2 ** 31 - 1));
  }

  private async tick(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = this.pingOnce(false);
    await this.running;
    this.running = undefined;
    this.schedule();
  }

  /**
   * Stops the loop and sends the `final` ping, bounded by `deadlineMono`.
   * A ping in flight is let finish first (its answer is owed bookkeeping).
   */
  async stop(deadlineMono: number): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const left = () => deadlineMono - this.d.clock().mono;
    if (this.running) {
      // Half the budget for the ping in flight, the rest for the final ping.
      const cut = setTimeout(() => this.abort.abort(), Math.max(0, left() / 2));
      await this.running;
      clearTimeout(cut);
    }
    const hold = this.d.pacer.heldUntil() - this.d.clock().mono;
    if (hold > 0 && hold >= left()) {
      this.d.log.warn({ wait_ms: Math.round(hold) }, 'platform asked to wait past the shutdown deadline; no final ping');
      return;
    }
    if (hold > 0) await new Promise((r) => setTimeout(r, hold));
    this.abort = new AbortController();
    const cut = setTimeout(() => this.abort.abort(), Math.max(0, left()));
    try {
      await this.pingOnce(true);
    } finally {
      clearTimeout(cut);
    }
  }

  private async pingOnce(final: boolean): Promise<void> {
    const { pacer, clock } = this.d;
    const start = clock();
    const promise = pacer.start(start.mono);
    const seq = ++this.seq;
    const plan = this.delta?.plan(this.deltaSource, seq, start.mono, final);
    const { workers, sent } = plan ?? this.deltaSource.collect();
    await this.d.beforeSend?.();
    // Parts go one after another: each may take a full timeout before the next ping can start.
    const count = Math.max(1, Math.ceil(workers.length / this.partSize.current));
    const within = leaseMs({
      pacerMs: promise, parts: count, timeoutMs: this.d.requestTimeoutMs, maxIntervalMs: this.d.maxIntervalMs, slackMs: PROMISE_SLACK_MS,
    });
    const parts = buildPing(this.d.info, {
      seq, workers, sent, partSize: this.partSize.current, sentAt: start.wall, nextPingWithinMs: within, final,
      ...(plan === undefined ? {} : { delta: { mode: plan.mode, base: plan.base, roster: plan.roster } }),
    });
    let complete = false;
    try {
      complete = await this.sendParts(parts);
    } finally {
      this.delta?.finish(complete);
    }
  }

  /** Sends the parts in order; returns whether every one was accepted. */
  private async sendParts(parts: PingPart[]): Promise<boolean> {
    const { registry, pacer, clock, metrics, log } = this.d;
    let outcome: PingOutcome = { kind: 'accepted' };
    for (const part of parts) {
      const body = JSON.stringify(part.body);
      const res = await this.d.client.send(body, part.body.batch.id, this.abort.signal);
      metrics.pings.inc({ outcome: res.outcome });
      metrics.pingDuration.observe(res.durationMs / 1000);
      metrics.pingBytes.inc(Buffer.byteLength(body));
      metrics.pingModes.inc({ mode: part.body.batch.mode ?? 'v1' });
      const now = clock();
      this.last = { atWall: now.wall, atMono: now.mono, outcome: res.outcome, status: res.status, error: res.error };
      if (res.outcome === 'accepted') {
        registry.acknowledge(part.sent, this.d.registryClock?.() ?? now);
        this.delta?.accepted(part.sent, res);
        this.lastAcceptedWall = now.wall;
        this.platformLog.accepted();
        this.d.onAccepted?.();
        if (res.nextIntervalMs !== undefined) outcome = { kind: 'accepted', nextIntervalMs: res.nextIntervalMs };
        continue;
      }
      const ctx = { batch: part.body.batch.id, status: res.status, error: res.error, workers: part.body.workers.length };
      if (res.outcome === 'resync' && this.delta !== undefined && part.body.batch.mode === 'delta') {
        // A 409 to a delta is not a failure: the full ping goes out at once (a 409 to a full ping is one).
        this.delta.conflict();
        log.info(ctx, 'platform asked for a full ping (409); sending one now');
        pacer.resize(now.mono);
        return false;
      }
      if (res.outcome === 'too_large') {
        const verdict = this.partSize.tooLarge(part.body.workers.length, now.mono, Buffer.byteLength(body));
        if (verdict.kind !== 'not-size') {
          if (verdict.kind === 'reject-entry') this.rejectEntry(part, now);
          else log.warn({ ...ctx, part_size: verdict.size }, 'platform said the ping is too large; resending in smaller parts');
          // Rebuilt from the current state (smaller parts, or without the refused entry), paced.
          pacer.resize(now.mono);
          return false;
        }
      }
      this.platformLog.failed(res, { ...ctx, failures: pacer.consecutiveFailures() + 1 });
      outcome =
        res.outcome === 'throttled'
          ? res.retryAfterMs === undefined ? { kind: 'throttled' } : { kind: 'throttled', retryAfterMs: res.retryAfterMs }
          : res.outcome === 'failed' ? { kind: 'failed', unreachable: res.unreachable === true } : { kind: 'rejected' };
      break;
    }
    const end = clock().mono;
    if (outcome.kind === 'accepted') this.partSize.accepted(end);
    pacer.finish(end, outcome, Math.random);
    return outcome.kind === 'accepted';
  }

  /**
   * The registry as pings see it: without the entries the platform refused
   * alone (413). A delta leaves them out too, and so does the roster, so the
   * platform's view and the roster agree.
   */
  private readonly deltaSource: DeltaSource = {
    collect: () => {
      const c = this.d.registry.collect();
      const { workers, sent } = this.refused.filter(c.workers, c.sent, (w) => jsonByteLength(w));
      return { workers, sent };
    },
    holds: (e) => this.d.registry.holds(e) && !(this.refused.size > 0 && this.refused.omits(toPingWorker(e), jsonByteLength)),
  };

  /**
   * The platform refused a part holding one entry: it will not take that
   * entry, and resending it would block every ping after it. A `stopped` or
   * `lost` entry is dropped as if delivered (the platform never learns that
   * transition); an `active` or `draining` one is left out of pings while it
   * is as large as when refused.
   */
  private rejectEntry(part: PingPart, now: Instant): void {
    const w = part.body.workers[0];
    if (w === undefined) return;
    const bytes = jsonByteLength(w);
    this.d.metrics.entriesRejected.inc({ state: w.state });
    const terminal = w.state === 'stopped' || w.state === 'lost';
    this.d.log.error(
      { worker: w.worker, instance: w.instance, state: w.state, bytes, batch: part.body.batch.id },
      terminal
        ? 'platform refused a ping entry on its own as too large (413); the platform is not told of this transition'
        : 'platform refused a ping entry on its own as too large (413); it is left out of pings until it shrinks or its instance changes',
    );
    if (terminal) {
      this.d.registry.acknowledge(part.sent, this.d.registryClock?.() ?? now);
      this.delta?.delivered(part.sent);
      this.d.onAccepted?.();
    } else {
      this.refused.refuse(w.worker, w.instance, bytes);
    }
  }
}
