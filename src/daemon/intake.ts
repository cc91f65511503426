/**
 * The one path every beat and leave takes, whatever carried it (NATS or
 * HTTP): decode, validate, apply to the registry, count, and tell the pinger
 * about transitions. Per beat this is the hot path: no allocation it can avoid.
 */
import type { Logger } from 'pino';
import type { Registry, Transition } from '../core/registry.js';
import type { Clock } from '../core/time.js';
import type { RetiredAs } from '../core/tombstones.js';
import { decodeBeat, decodeLeave, validateBeat, validateLeave, type Decoded, type RejectReason } from '../protocol/decode.js';
import { MAX_BEAT_BYTES, type Beat, type Leave, type LeaveReply } from '../protocol/schemas.js';
import { within } from '../util/index.js';
import { jsonByteLength } from './json-size.js';
import type { Metrics } from './metrics.js';
import type { RejectLog } from './reject-log.js';

/**
 * How long a Leave waits for the state journal before it is answered
 * `ok: false`: a hung disk (fsfreeze, a dead NFS server) must not leave the
 * worker waiting forever. A constant: 2 s is far above a healthy fdatasync and
 * well inside the client's Leave timeout.
 */
export const LEAVE_PERSIST_TIMEOUT_MS = 2_000;

/** Replies to Leaves applied but not made durable (a server-side failure: HTTP answers 503, not 400). */
const notDurable = new WeakSet<LeaveReply>();
export const isNotDurable = (reply: LeaveReply): boolean => notDurable.has(reply);

export type BeatResult = { ok: true } | { ok: false; reason: RejectReason; error: string };

export interface IntakeDeps {
  registry: Registry;
  clock: Clock;
  metrics: Metrics;
  rejects: RejectLog;
  log: Logger;
  /** Called on every transition (the pinger pings urgently). */
  onTransition(kind: Transition, worker: string): void;
  /**
   * An instance was retired (a Leave, or replaced by a restart) at wall time
   * `at`: the state journal queues a record of it, so its beats stay
   * suppressed after a crash. Called before `persist`.
   */
  retired?(worker: string, instance: string, as: RetiredAs, at: number): void;
  /** Makes a Leave (its terminal state, its retirement) durable before it is acknowledged (the state journal). */
  persist?(): Promise<void>;
  /** How long a Leave waits for `persist`. Default `LEAVE_PERSIST_TIMEOUT_MS`. */
  persistTimeoutMs?: number;
  /** A beat from `stale`, an instance `current` replaced: two processes claim `worker` (counted, logged rate-limited). */
  conflict?(worker: string, stale: string, current: string): void;
}

export class Intake {
  /** False once the daemon stops taking input. */
  open = true;

  constructor(private readonly d: IntakeDeps) {}

  /** A beat as raw bytes (NATS); `subjectWorker` is the subject's last token. */
  beatBytes(data: Uint8Array | string, subjectWorker: string | undefined, source: string): BeatResult {
    return this.applyBeat(decodeBeat(data, subjectWorker), source);
  }

  /** A beat already parsed from JSON (HTTP, one item of an array): the 8 KiB limit applies per beat. */
  beatValue(value: unknown, source: string): BeatResult {
    // Measured without recursion: JSON.stringify throws on a deeply nested item (a RangeError, then a 500).
    const size = jsonByteLength(value, MAX_BEAT_BYTES);
    if (size > MAX_BEAT_BYTES) return this.reject('too_large', `beat is over ${MAX_BEAT_BYTES} bytes as JSON`, source);
    return this.applyBeat(validateBeat(value), source);
  }

  async leaveBytes(data: Uint8Array | string, subjectWorker: string | undefined, source: string): Promise<LeaveReply> {
    return this.applyLeave(decodeLeave(data, subjectWorker), source);
  }

  async leaveValue(value: unknown, source: string): Promise<LeaveReply> {
    return this.applyLeave(validateLeave(value), source);
  }

  private applyBeat(decoded: Decoded<Beat>, source: string): BeatResult {
    if (!decoded.ok) return this.reject(decoded.reason, decoded.error, source);
    if (!this.open) return this.reject('capacity', 'the daemon is shutting down and takes no more beats', source);
    const t = this.d.clock();
    const out = this.d.registry.applyBeat(decoded.value, t);
    if (!out.ok) {
      if (out.conflict !== undefined) {
        this.d.metrics.instanceConflicts.inc();
        this.d.conflict?.(decoded.value.worker, decoded.value.instance, out.conflict);
      }
      return this.reject(out.reason, out.error, source);
    }
    this.d.metrics.beatsAccepted.inc();
    if (out.transition) {
      if (out.replaced !== undefined) this.d.retired?.(decoded.value.worker, out.replaced, 'replaced', t.wall);
      this.transition(out.transition, decoded.value.worker);
    }
    return { ok: true };
  }

  private async applyLeave(decoded: Decoded<Leave>, source: string): Promise<LeaveReply> {
    if (!decoded.ok) {
      this.d.metrics.leaves.inc({ phase: 'unknown', result: decoded.reason });
      this.d.rejects.record(decoded.reason, `leave: ${decoded.error}`, source);
      return { ok: false, error: decoded.error };
    }
    const leave = decoded.value;
    if (!this.open) {
      // After the final ping nothing would carry it to the platform: say so instead of acknowledging.
      this.d.metrics.leaves.inc({ phase: leave.phase, result: 'refused' });
      return { ok: false, error: 'the daemon is shutting down and cannot deliver this announcement; its successor will take it' };
    }
    const t = this.d.clock();
    const out = this.d.registry.applyLeave(leave, t);
    if (!out.ok) {
      this.d.metrics.leaves.inc({ phase: leave.phase, result: 'refused' });
      return { ok: false, error: out.error };
    }
    // Suppression is in effect from here on: the registry drops the instance's beats.
    if (out.transition) {
      this.transition(out.transition, leave.worker);
      this.d.log.info({ worker: leave.worker, instance: leave.instance, reason: leave.reason }, `worker ${out.state}`);
    }
    // Durable before the reply, whichever the phase: the reply promises suppression, a restart included.
    // A repeated Leave is journaled again: cheap, and safe after a write that failed.
    this.d.retired?.(leave.worker, leave.instance, out.state, t.wall);
    const notDurable = await this.persist(leave);
    if (notDurable !== undefined) return notDurable;
    this.d.metrics.leaves.inc({ phase: leave.phase, result: out.transition ? 'applied' : 'repeated' });
    return { ok: true, worker: leave.worker, instance: leave.instance, state: out.state };
  }

  /**
   * Waits for the journal, within its deadline. Undefined when durable; else
   * the `ok: false` reply (the Leave is applied, not durable: a repeated
   * Leave journals it again, so the worker's retry is what fixes it).
   */
  private async persist(leave: Leave): Promise<LeaveReply | undefined> {
    if (!this.d.persist) return undefined;
    const ms = this.d.persistTimeoutMs ?? LEAVE_PERSIST_TIMEOUT_MS;
    let result: 'journal_timeout' | 'journal_failed';
    let error: string;
    try {
      if ((await within(this.d.persist(), ms)) !== undefined) return undefined;
      result = 'journal_timeout';
      error = `the state journal did not confirm the write within ${ms} ms (a hung or very slow disk?)`;
    } catch (err) {
      result = 'journal_failed';
      error = `the state journal could not write it (${(err as Error).message})`;
    }
    this.d.metrics.leaves.inc({ phase: leave.phase, result });
    this.d.log.warn({ worker: leave.worker, instance: leave.instance, result }, `leave not durable: ${error}`);
    const reply: LeaveReply = { ok: false, error: `${error}: the announcement is applied but would not survive a crash; send it again` };
    notDurable.add(reply);
    return reply;
  }

  private transition(kind: Transition, worker: string): void {
    this.d.metrics.transitions.inc({ kind });
    this.d.onTransition(kind, worker);
  }

  private reject(reason: RejectReason, error: string, source: string): BeatResult {
    this.d.metrics.rejected(reason);
    this.d.rejects.record(reason, error, source);
    return { ok: false, reason, error };
  }
}
