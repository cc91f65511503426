/**
 * The ping loop: asks the pacer when, the registry what, sends it through the
 * platform client, and feeds the answer back. One ping at a time; every try
 * is rebuilt from the current state, never replayed.
 */
import type { Logger } from 'pino';
import { buildPing, type DaemonInfo } from '../core/batch.js';
import type { DeltaTracker, PingPlan } from '../core/delta.js';
import { PROMISE_SLACK_MS, type Pacer, type PingOutcome } from '../core/pacer.js';
import type { Registry } from '../core/registry.js';
import type { Clock } from '../core/time.js';
import type { Metrics } from './metrics.js';
import type { PlatformClient, SendResult } from './platform-client.js';

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
  /** Delta pings (v1.1); absent when `platform.delta` is `off`: every ping is a v1 ping. */
  delta?: DeltaTracker;
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
  private partSize: number;
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
    this.partSize = d.maxBatchWorkers;
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
    const { registry, pacer, clock } = this.d;
    const start = clock();
    const promise = pacer.start(start.mono);
    const seq = ++this.seq;
    const plan: Partial<PingPlan> & Pick<PingPlan, 'workers' | 'sent'> =
      this.d.delta?.plan(registry, seq, start.mono, final) ?? registry.collect();
    const { workers, sent } = plan;
    await this.d.beforeSend?.();
    // Parts go one after another: each may take a full timeout before the next ping can start.
    const count = Math.max(1, Math.ceil(workers.length / this.partSize));
    const within = Math.max(promise, count * this.d.requestTimeoutMs + PROMISE_SLACK_MS);
    const parts = buildPing(this.d.info, {
      seq, workers, sent, partSize: this.partSize, sentAt: start.wall, nextPingWithinMs: within, final,
      ...(plan.mode === undefined || plan.roster === undefined ? {} : { delta: { mode: plan.mode, base: plan.base, roster: plan.roster } }),
    });
    let complete = false;
    try {
      complete = await this.sendParts(parts);
    } finally {
      this.d.delta?.finish(complete);
    }
  }

  /** Sends the parts in order; returns whether every one was accepted. */
  private async sendParts(parts: ReturnType<typeof buildPing>): Promise<boolean> {
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
        this.d.delta?.accepted(part.sent, res);
        this.lastAcceptedWall = now.wall;
        this.d.onAccepted?.();
        if (res.nextIntervalMs !== undefined) outcome = { kind: 'accepted', nextIntervalMs: res.nextIntervalMs };
        continue;
      }
      const ctx = { batch: part.body.batch.id, status: res.status, error: res.error, workers: part.body.workers.length };
      if (res.outcome === 'resync' && this.d.delta !== undefined && part.body.batch.mode === 'delta') {
        // A 409 to a delta is not a failure: the full ping goes out at once (a 409 to a full ping is one).
        this.d.delta.conflict();
        log.info(ctx, 'platform asked for a full ping (409); sending one now');
        pacer.resize(now.mono);
        return false;
      }
      if (res.outcome === 'too_large' && this.partSize > 1) {
        this.partSize = Math.max(1, Math.floor(this.partSize / 2));
        log.warn({ ...ctx, part_size: this.partSize }, 'platform said the ping is too large; halving the part size');
        pacer.resize(now.mono);
        return false;
      }
      log.warn({ ...ctx, failures: pacer.consecutiveFailures() + 1 }, 'ping not accepted; will retry');
      outcome =
        res.outcome === 'throttled'
          ? res.retryAfterMs === undefined ? { kind: 'throttled' } : { kind: 'throttled', retryAfterMs: res.retryAfterMs }
          : res.outcome === 'failed' ? { kind: 'failed', unreachable: res.unreachable === true } : { kind: 'rejected' };
      pacer.finish(clock().mono, outcome, Math.random);
      return false;
    }
    pacer.finish(clock().mono, outcome, Math.random);
    return true;
  }
}
