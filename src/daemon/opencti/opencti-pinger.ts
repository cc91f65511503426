/**
 * platform.kind "opencti": pings OpenCTI's `pingConnector` on behalf of the
 * connectors whose workers beat here. The registry says who is live
 * (connector-map.ts), the schedule says who is due (connector-schedule.ts),
 * the gate says whether a request may start (request-gate.ts); this edge
 * sends at most MAX_IN_FLIGHT documents at a time and applies the answers.
 *
 * State is never wiped: a ping carries the state the worker reports, else
 * the one the platform returned last, read with `connector(id)` before the
 * first ping of a connector we know nothing about.
 */
import type { Logger } from 'pino';
import type { HbaggConfig, OpenCtiConfig } from '../../config/types.js';
import { PROMISE_SLACK_MS } from '../../core/pacer.js';
import type { Registry } from '../../core/registry.js';
import type { Clock } from '../../core/time.js';
import type { Metrics } from '../metrics.js';
import type { LastPing } from '../pinger.js';
import type { PlatformPinger } from '../platform-pinger.js';
import { mapConnectors, type ConnectorMap } from './connector-map.js';
import { ConnectorSchedule } from './connector-schedule.js';
import { DeleteOnStop } from './delete-on-stop.js';
import { deleteDocument } from './documents.js';
import { GraphqlClient } from './graphql-client.js';
import { OpenCtiCalls, type GraphqlPoster } from './opencti-calls.js';
import { OpenCtiMetrics, type ConnectorState } from './opencti-metrics.js';
import { PingRound } from './ping-round.js';
import { RequestGate, type GateOptions } from './request-gate.js';

/** Documents in flight at most: enough to keep up, few enough to be polite. */
export const MAX_IN_FLIGHT = 4;
/** The loop looks at the registry at least this often, whatever is due. */
const MAX_SLEEP_MS = 5_000;

export interface OpenCtiPingerDeps {
  registry: Pick<Registry, 'snapshot' | 'collect' | 'acknowledge'>;
  client: GraphqlPoster;
  clock: Clock;
  registryClock?: Clock;
  metrics: Metrics;
  log: Logger;
  config: OpenCtiConfig;
  gate: GateOptions;
  requestTimeoutMs: number;
  urgentFlushMs: number;
  /** Called after terminal entries are settled (the journal records it). */
  onAccepted?(): void;
  rand?: () => number;
}

export class OpenCtiPinger implements PlatformPinger {
  readonly allowanceMs: number;
  readonly schedule: ConnectorSchedule;
  private readonly gate: RequestGate;
  private readonly calls: OpenCtiCalls;
  private readonly round: PingRound;
  private readonly deletes: DeleteOnStop;
  private readonly om: OpenCtiMetrics;
  private view: ConnectorMap = { connectors: new Map(), unmapped: [] };
  private readonly loggedUnmapped = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private stopped = false;

  constructor(private readonly d: OpenCtiPingerDeps) {
    const rand = d.rand ?? Math.random;
    this.schedule = new ConnectorSchedule(d.config.pingEveryMs);
    this.gate = new RequestGate(d.gate);
    this.calls = new OpenCtiCalls({ client: d.client, gate: this.gate, clock: d.clock, metrics: d.metrics, log: d.log, aliases: d.config.aliasesPerRequest, rand });
    this.om = new OpenCtiMetrics(d.metrics, () => this.countByState());
    this.round = new PingRound({ calls: this.calls, schedule: this.schedule, metrics: this.om, log: d.log, clock: d.clock, view: (id) => this.view.connectors.get(id) });
    this.deletes = new DeleteOnStop(d.config, d.log);
    // With one connector, requests come once a period; each may take its timeout.
    this.allowanceMs = d.config.pingEveryMs + d.requestTimeoutMs + PROMISE_SLACK_MS;
  }

  get last(): LastPing | undefined {
    return this.calls.last;
  }

  get lastAcceptedWall(): number | undefined {
    return this.calls.lastAcceptedWall;
  }

  start(): void {
    this.arm(0);
  }

  urgent(): void {
    this.arm(Math.floor(this.d.urgentFlushMs / 2));
  }

  idle(): string | undefined {
    const owed = this.schedule.views().some((s) => s.failures === 0) || this.deletes.owed().length > 0;
    return owed ? undefined : 'no live OpenCTI connector to ping';
  }

  /** Lets requests in flight finish (cut at half the budget), then sends the deletes a clean stop owes. No final ping. */
  async stop(deadlineMono: number): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const left = () => deadlineMono - this.d.clock().mono;
    if (this.inFlight.size > 0) {
      const cut = setTimeout(() => this.calls.abort.abort(), Math.max(0, left() / 2));
      await Promise.all([...this.inFlight]);
      clearTimeout(cut);
    }
    this.refresh();
    const owed = this.deletes.owed();
    if (owed.length === 0) return;
    if (this.gate.heldByPlatform(this.d.clock().mono) && this.gate.openAt() >= deadlineMono) {
      this.d.log.warn({ connectors: owed.length }, 'platform asked to wait past the shutdown deadline; connectors not deleted');
      return;
    }
    this.calls.abort = new AbortController();
    const cut = setTimeout(() => this.calls.abort.abort(), Math.max(0, left()));
    try {
      for (const id of owed) if (left() > 0) await this.deleteOne(id);
    } finally {
      clearTimeout(cut);
    }
    this.refresh();
  }

  private arm(delayMs: number): void {
    if (this.stopped) return;
    const at = this.d.clock().mono + Math.max(0, delayMs);
    if (this.timer !== undefined && this.timerAt <= at) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.tick(), Math.min(Math.max(0, delayMs), 2 ** 31 - 1));
  }

  /** Sleeps until the next connector is due (or the gate opens); completions re-arm when all slots are busy. */
  private rearm(): void {
    if (this.stopped || this.inFlight.size >= MAX_IN_FLIGHT) return;
    const now = this.d.clock().mono;
    // A delete in flight is not work to wake for: its completion re-arms.
    const work = this.deletes.owed().some((id) => !this.deletes.busy(id)) ? now : this.schedule.nextDueAt();
    const at = Math.max(work, this.gate.openAt());
    this.arm(Math.min(at - now, MAX_SLEEP_MS));
  }

  private tick(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.stopped) return;
    this.refresh();
    const now = this.d.clock().mono;
    if (this.gate.openAt() <= now) {
      let free = MAX_IN_FLIGHT - this.inFlight.size;
      for (const id of this.deletes.owed()) {
        if (free <= 0 || this.deletes.busy(id)) continue;
        this.launch(this.deleteOne(id));
        free--;
      }
      for (const group of this.schedule.take(now, this.calls.aliasesFor('mutation'), free)) this.launch(this.round.ping(group));
    }
    this.rearm();
  }

  private launch(p: Promise<void>): void {
    this.inFlight.add(p);
    void p
      .catch((err: unknown) => this.d.log.error({ err }, 'OpenCTI round failed'))
      .finally(() => {
        this.inFlight.delete(p);
        this.rearm();
      });
  }

  /** Reads the registry: who is a connector, who is live, what a clean stop owes; settles terminal entries. */
  private refresh(): void {
    const now = this.d.clock().mono;
    this.view = mapConnectors(this.d.registry.snapshot(), this.d.config.connectors);
    for (const u of this.view.unmapped) {
      if (this.loggedUnmapped.has(u.worker)) continue;
      this.loggedUnmapped.add(u.worker);
      this.d.log.warn(u, 'worker is not an OpenCTI connector; not sent to OpenCTI');
    }
    const live = new Map<string, string>();
    for (const v of this.view.connectors.values()) if (v.live) live.set(v.id, v.epoch);
    const { appeared, gone } = this.schedule.sync(live, now);
    for (const id of appeared) this.d.log.info({ connector: id }, 'OpenCTI connector live; pinging it');
    for (const id of gone) {
      this.round.forget(id);
      this.d.log.info({ connector: id }, 'OpenCTI connector has no live replica; no more pings');
    }
    this.deletes.update(this.view);
    // Terminal entries owe OpenCTI nothing more (silence makes them inactive), unless a delete is pending.
    const held = new Set(this.deletes.owed().flatMap((id) => this.view.connectors.get(id)?.workers ?? []));
    const settled = this.d.registry.collect().sent.filter((s) => (s.state === 'stopped' || s.state === 'lost') && !held.has(s.worker));
    if (settled.length > 0) {
      this.d.registry.acknowledge(settled, (this.d.registryClock ?? this.d.clock)());
      this.d.onAccepted?.();
    }
  }

  private async deleteOne(id: string): Promise<void> {
    this.deletes.start(id);
    const verdict = await this.calls.send(deleteDocument(id), 'mutation', 1);
    const result = verdict.kind === 'answered' ? verdict.aliases.get('c0') : undefined;
    this.om.deletes.inc({ outcome: result?.kind ?? verdict.kind });
    this.deletes.finish(id, verdict);
    // Its workers' stopped entries were held for the delete: settle them now.
    if (!this.stopped) this.refresh();
  }

  private countByState(): Record<ConnectorState, number> {
    const counts: Record<ConnectorState, number> = { pinged: 0, pending: 0, unknown: 0, rejected: 0, stopped: 0 };
    for (const s of this.schedule.views()) counts[s.outcome === 'ok' ? 'pinged' : (s.outcome ?? 'pending')]++;
    for (const v of this.view.connectors.values()) if (!v.live) counts.stopped++;
    return counts;
  }
}

export interface OpenCtiPingerParts {
  config: HbaggConfig;
  registry: OpenCtiPingerDeps['registry'];
  clock: Clock;
  registryClock: Clock;
  metrics: Metrics;
  log: Logger;
  userAgent: string;
  onAccepted(): void;
}

/** The OpenCTI adapter as the daemon builds it from its config (platform.kind "opencti"). */
export function openCtiPinger(p: OpenCtiPingerParts): OpenCtiPinger {
  const { platform, flush } = p.config;
  if (!platform.url) throw new Error('platform.url is required to run the daemon');
  return new OpenCtiPinger({
    registry: p.registry, clock: p.clock, registryClock: p.registryClock, metrics: p.metrics, log: p.log,
    client: new GraphqlClient({ url: platform.url, token: platform.token, timeoutMs: platform.timeoutMs, userAgent: p.userAgent }),
    config: platform.opencti,
    gate: { minIntervalMs: flush.minIntervalMs, maxIntervalMs: flush.maxIntervalMs, maxRetryAfterMs: platform.maxRetryAfterMs },
    requestTimeoutMs: platform.timeoutMs,
    urgentFlushMs: flush.urgentFlushMs,
    onAccepted: p.onAccepted,
  });
}
