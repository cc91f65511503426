/**
 * The shared-subject guard. Two daemons whose beat subjects reach each other
 * (one NATS account with the same prefix, or leaf nodes that pass `hb.>`)
 * would each hear every node's workers. What matters is the subject space,
 * not the prefix's spelling, so the space itself is probed: every daemon
 * answers `<prefix>.probe`, and a daemon asks it before subscribing to beats.
 * An answer from another instance means beats would reach both: refuse.
 * Later twins (a cluster heals, a leaf config changes) are found by asking
 * again every minute; they fail /healthz and show in `status`.
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { HealthCheck } from '../http/health.js';

/** How long the start probe collects answers: a twin across a leaf or route answers in milliseconds. */
export const PROBE_WINDOW_MS = 500;
/** How often a running daemon asks again (and logs an error while a twin answers). */
export const RECHECK_MS = 60_000;
/**
 * A running daemon's finding is confirmed by a second probe this much later:
 * a newcomer answers too while it probes, and it refuses and leaves within a
 * second; only a twin that stays is one.
 */
export const CONFIRM_MS = 3_000;

export interface ProbeIdentity {
  node: string;
  instance: string;
  version: string;
  /** The HTTP address the other daemon listens on, to find it. */
  http?: string;
}

export interface Twin extends ProbeIdentity {
  /** Wall ms of the probe that found it. */
  seenAt: number;
}

export function probeSubject(prefix: string): string {
  return `${prefix}.probe`;
}

/** The refusal at start; its message is what the operator reads. */
export class SharedSubjectError extends Error {
  constructor(
    readonly twin: Twin,
    readonly prefix: string,
  ) {
    super(sharedSubjectMessage(twin, prefix));
    this.name = 'SharedSubjectError';
  }
}

export function sharedSubjectMessage(twin: ProbeIdentity, prefix: string): string {
  return (
    `another hbagg answers on ${probeSubject(prefix)}: node "${twin.node}" (instance ${twin.instance}` +
    `${twin.http ? `, http ${twin.http}` : ''}) shares this subject space, so beats on ${prefix}.beat.* would reach both daemons. ` +
    `Fix one of: give each node its own prefix (HBAGG_SUBJECT_PREFIX=hb.<node>, and the same subjectPrefix in its workers), ` +
    `or connect each node's hbagg and workers to a local NATS leaf node whose remote does not share ${prefix}.> (deny_imports/deny_exports; see deploy/nats/)`
  );
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface TwinGuardOptions {
  self: () => ProbeIdentity;
  prefix: string;
  log: Logger;
  windowMs?: number;
  recheckMs?: number;
  confirmMs?: number;
}

export class TwinGuard {
  private sub: Subscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private _twin: Twin | undefined;
  private stopped = false;
  /** When an asker last triggered a recheck (at most one such a minute: two real twins must not ping-pong). */
  private askedAt = -Infinity;
  readonly subject: string;

  constructor(private readonly o: TwinGuardOptions) {
    this.subject = probeSubject(o.prefix);
  }

  /** The other daemon the last probe found, if any. */
  get twin(): Twin | undefined {
    return this._twin;
  }

  /**
   * At start, before the beat subscriptions: answer the probe subject first
   * (two daemons starting at once then both see each other and both refuse,
   * rather than both start), then ask it. Throws `SharedSubjectError`.
   */
  async guardStart(nc: NatsConnection): Promise<void> {
    this.answer(nc);
    let twins: Twin[] = [];
    try {
      twins = await this.probe(nc);
    } catch (err) {
      // Could not ask (the connection dropped, no permission): starting deaf would be worse; the minute checks go on.
      this.o.log.warn({ err, subject: this.subject }, 'shared-subject probe failed at start; starting, and asking again every minute');
    }
    if (twins[0]) throw new SharedSubjectError(twins[0], this.o.prefix);
    this.timer = setInterval(() => void this.recheck(nc), this.o.recheckMs ?? RECHECK_MS);
    this.timer.unref();
  }

  /** Asks again; records (and logs as an error) a twin while one answers. */
  async recheck(nc: NatsConnection): Promise<Twin | undefined> {
    if (this.stopped) return this._twin;
    let twins: Twin[];
    try {
      const first = await this.probe(nc);
      twins = first;
      if (first.length > 0) {
        await new Promise((r) => setTimeout(r, this.o.confirmMs ?? CONFIRM_MS).unref());
        twins = (await this.probe(nc)).filter((t) => first.some((f) => f.instance === t.instance));
        if (twins.length === 0) this.o.log.info({ left: first, subject: this.subject }, 'the other daemon on the probe subject left: no twin');
      }
    } catch (err) {
      // Not being able to ask (disconnected) says nothing about twins: keep the last verdict.
      this.o.log.debug({ err }, 'subject-space probe failed');
      return this._twin;
    }
    this._twin = twins[0];
    if (this._twin) this.o.log.error({ twin: this._twin, subject: this.subject }, sharedSubjectMessage(this._twin, this.o.prefix));
    return this._twin;
  }

  /** Other daemon instances that answer the probe subject within the window. */
  async probe(nc: NatsConnection): Promise<Twin[]> {
    const me = this.o.self();
    const replies = await nc.requestMany(this.subject, encoder.encode(JSON.stringify(me)), {
      strategy: 'timer',
      maxWait: this.o.windowMs ?? PROBE_WINDOW_MS,
    });
    const twins: Twin[] = [];
    for await (const m of replies) {
      const other = parseIdentity(m);
      if (other && other.instance !== me.instance) twins.push({ ...other, seenAt: Date.now() });
    }
    return twins;
  }

  private answer(nc: NatsConnection): void {
    if (this.sub) return;
    this.sub = nc.subscribe(this.subject, {
      callback: (err, msg) => {
        if (err || !msg.reply) return;
        const me = this.o.self();
        const asker = parseIdentity(msg);
        msg.respond(encoder.encode(JSON.stringify(me)));
        if (asker && asker.instance !== me.instance) this.asked(nc, asker);
      },
    });
  }

  /**
   * Another instance asked: a newcomer, which should refuse and leave. If it
   * stays (its own probe failed, so it started), the recheck finds it within
   * seconds rather than at the next minute; one that leaves is not confirmed.
   */
  private asked(nc: NatsConnection, asker: ProbeIdentity): void {
    this.o.log.warn({ asker, subject: this.subject }, 'another hbagg probed this subject space (it should refuse to start)');
    const now = performance.now();
    if (this.stopped || now - this.askedAt < (this.o.recheckMs ?? RECHECK_MS)) return;
    this.askedAt = now;
    void this.recheck(nc);
  }

  /** /healthz check `subject_space`: fails while another daemon shares the beat subjects. */
  healthCheck(): HealthCheck {
    return {
      name: 'subject_space',
      timeoutMs: 100,
      run: () => {
        const t = this._twin;
        if (t) throw new Error(sharedSubjectMessage(t, this.o.prefix));
        return { subject: this.subject };
      },
    };
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.sub?.unsubscribe();
    this.sub = undefined;
  }
}

function parseIdentity(m: Msg): ProbeIdentity | undefined {
  try {
    const v = JSON.parse(decoder.decode(m.data)) as Partial<ProbeIdentity> | null;
    if (typeof v?.node !== 'string' || typeof v.instance !== 'string') return undefined;
    return { node: v.node, instance: v.instance, version: String(v.version ?? '?'), ...(typeof v.http === 'string' ? { http: v.http } : {}) };
  } catch {
    return undefined;
  }
}
