/**
 * How many entries go in one request, and what a 413 means. Pure: time
 * (monotonic ms) comes in as an argument.
 *
 * - A 413 on a part of N > 1 entries: parts of floor(N / 2) from now on. It
 *   halves what was refused, not the configured size, so a 40-entry ping
 *   under a 1000 part size splits at once instead of resending the same body
 *   five times.
 * - A 413 on a part of one entry: the platform will not take that entry
 *   (`reject-entry`); splitting further is impossible. Unless the part is
 *   under 1 KiB: no sane limit is that low, so that is a failure.
 * - A 413 on an empty ping is not about size (`not-size`): a failure, backed off.
 * - After each accepted ping the size doubles back toward the maximum, but
 *   stays below the refused count until `regrowAfterMs` has passed since the
 *   last 413: a brief 413 does not shrink parts forever, and a fixed platform
 *   limit is not probed on every ping.
 */
import type { PingWorker } from '../protocol/schemas.js';
import type { SentRecord } from './registry.js';

export type TooLargeVerdict =
  | { kind: 'split'; size: number }
  | { kind: 'reject-entry' }
  | { kind: 'not-size' };

export interface PartSizeOptions {
  /** `platform.max_batch_workers`. */
  max: number;
  /** How long a refused part size is remembered as too large. */
  regrowAfterMs: number;
}

/** A refused size is remembered for this many `max_interval_ms` (5 min with the default 30 s). */
export const REGROW_AFTER_INTERVALS = 10;

/** A one-entry part smaller than this is never taken to be too large (see `tooLarge`). */
export const MIN_REFUSABLE_BYTES = 1024;

export class PartSize {
  private size: number;
  /** Parts of this many entries (or more) were refused at `refusedAt`. */
  private refused = Infinity;
  private refusedAt = -Infinity;

  constructor(private readonly opts: PartSizeOptions) {
    this.size = opts.max;
  }

  get current(): number {
    return this.size;
  }

  /** The platform answered 413 to a part of `entries` entries, `bytes` long. */
  tooLarge(entries: number, now: number, bytes = Infinity): TooLargeVerdict {
    if (entries <= 0) return { kind: 'not-size' };
    // A platform that 413s a small single entry is misbehaving, not full: dropping entries one
    // by one would lose every terminal state it is owed, so that is a plain failure, backed off.
    if (entries === 1) return bytes < MIN_REFUSABLE_BYTES ? { kind: 'not-size' } : { kind: 'reject-entry' };
    this.refused = Math.min(entries, now - this.refusedAt < this.opts.regrowAfterMs ? this.refused : Infinity);
    this.refusedAt = now;
    this.size = Math.min(this.size, Math.floor(entries / 2));
    return { kind: 'split', size: this.size };
  }

  /** A whole ping was accepted: grow back (doubling), below a recently refused size. */
  accepted(now: number): void {
    if (now - this.refusedAt >= this.opts.regrowAfterMs) this.refused = Infinity;
    this.size = Math.max(1, Math.min(this.opts.max, this.refused - 1, this.size * 2));
  }
}

/**
 * The lease a ping promises (`next_ping_within_ms`): the pacer's promise, or
 * long enough for every part to time out in turn, but never more than
 * `2 x maxIntervalMs + timeoutMs` (plus slack). Without the cap, parts of one
 * entry made the promise parts x timeout: hours with 10,000 workers.
 */
export function leaseMs(o: { pacerMs: number; parts: number; timeoutMs: number; maxIntervalMs: number; slackMs: number }): number {
  const needed = Math.max(o.pacerMs, o.parts * o.timeoutMs + o.slackMs);
  return Math.min(needed, 2 * o.maxIntervalMs + o.timeoutMs + o.slackMs);
}

/**
 * `active`/`draining` entries the platform refused alone with a 413. Each is
 * left out of later pings while its serialized size is more than 90% of the
 * refused size (a beat counter gaining a digit must not make it flap): one
 * that shrinks (smaller meta) or a new instance is tried again. Terminal
 * entries are never left out: the pinger drops them when refused, and one
 * that went `lost` since must still be reported.
 */
export class RefusedEntries {
  private readonly bytes = new Map<string, number>();

  get size(): number {
    return this.bytes.size;
  }

  refuse(worker: string, instance: string, bytes: number): void {
    const key = entryKey(worker, instance);
    this.bytes.set(key, Math.min(bytes, this.bytes.get(key) ?? Infinity));
  }

  /** Whether `w` is left out of pings (refused, still live and about as large). */
  omits(w: PingWorker, sizeOf: (w: PingWorker) => number): boolean {
    const refused = this.bytes.get(entryKey(w.worker, w.instance));
    return refused !== undefined && (w.state === 'active' || w.state === 'draining') && sizeOf(w) > refused * 0.9;
  }

  /** `workers`/`sent` without refused entries; forgets refused instances no longer listed (give it a full list). */
  filter(
    workers: readonly PingWorker[],
    sent: readonly SentRecord[],
    sizeOf: (w: PingWorker) => number,
  ): { workers: PingWorker[]; sent: SentRecord[]; omitted: number } {
    if (this.bytes.size === 0) return { workers: [...workers], sent: [...sent], omitted: 0 };
    const seen = new Set<string>();
    const out = { workers: [] as PingWorker[], sent: [] as SentRecord[], omitted: 0 };
    workers.forEach((w, i) => {
      const key = entryKey(w.worker, w.instance);
      const refused = this.bytes.get(key);
      if (refused !== undefined) {
        seen.add(key);
        if ((w.state === 'active' || w.state === 'draining') && sizeOf(w) > refused * 0.9) {
          out.omitted++;
          return;
        }
      }
      out.workers.push(w);
      out.sent.push(sent[i]!);
    });
    for (const key of [...this.bytes.keys()]) if (!seen.has(key)) this.bytes.delete(key);
    return out;
  }
}

function entryKey(worker: string, instance: string): string {
  return `${worker}\u0000${instance}`;
}
