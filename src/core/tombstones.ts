/**
 * Retired instances (those that announced a Leave, or were replaced by a
 * restart). A beat of a retired instance is dropped as `suppressed`. Kept for
 * `retentionMs` and at most `max` of them; a Map keeps them in retirement
 * order, so pruning and eviction take them from the front.
 */
import type { LeavePhase } from '../protocol/schemas.js';

export type RetiredAs = LeavePhase | 'replaced';

interface Tombstone {
  atMono: number;
  as: RetiredAs;
}

/** A retired instance and how long ago it was retired: what survives a restart. */
export interface RetiredInstance {
  worker: string;
  instance: string;
  as: RetiredAs;
  ageMs: number;
}

export function instanceKey(worker: string, instance: string): string {
  return `${worker}\u0000${instance}`;
}

export class Tombstones {
  private readonly byKey = new Map<string, Tombstone>();
  /** Tombstones evicted by the count limit before their retention ran out. */
  evictedEarly = 0;

  constructor(
    private readonly retentionMs: number,
    private readonly max: number,
  ) {}

  get size(): number {
    return this.byKey.size;
  }

  get(worker: string, instance: string): RetiredAs | undefined {
    return this.byKey.get(instanceKey(worker, instance))?.as;
  }

  retire(worker: string, instance: string, as: RetiredAs, mono: number): void {
    const key = instanceKey(worker, instance);
    this.byKey.delete(key); // re-insert so the Map stays ordered by last retirement
    this.byKey.set(key, { atMono: mono, as });
    if (this.byKey.size > this.max) {
      const oldest = this.byKey.keys().next().value as string;
      this.byKey.delete(oldest);
      this.evictedEarly++;
    }
  }

  /** Every tombstone with its age at `mono`, oldest first. */
  list(mono: number): RetiredInstance[] {
    const out: RetiredInstance[] = [];
    for (const [key, t] of this.byKey) {
      const cut = key.indexOf('\u0000'); // worker ids never contain it
      out.push({ worker: key.slice(0, cut), instance: key.slice(cut + 1), as: t.as, ageMs: mono - t.atMono });
    }
    return out;
  }

  /**
   * Brings back tombstones after a restart, each `ageMs` old at `mono` (those
   * past the retention are skipped). Merged with those already held and
   * re-sorted by retirement time, since pruning takes from the front; of two
   * for one instance the later wins; beyond `max` the oldest go.
   */
  restore(list: readonly RetiredInstance[], mono: number): void {
    const merged = new Map(this.byKey);
    for (const r of list) {
      if (r.ageMs >= this.retentionMs) continue;
      const key = instanceKey(r.worker, r.instance);
      const atMono = mono - Math.max(0, r.ageMs);
      const held = merged.get(key);
      if (held === undefined || held.atMono < atMono) merged.set(key, { atMono, as: r.as });
    }
    const sorted = [...merged].sort((a, b) => a[1].atMono - b[1].atMono);
    const over = Math.max(0, sorted.length - this.max);
    this.evictedEarly += over;
    this.byKey.clear();
    for (let i = over; i < sorted.length; i++) this.byKey.set(sorted[i]![0], sorted[i]![1]);
  }

  /** Forgets tombstones older than the retention; returns how many. */
  prune(mono: number): number {
    let n = 0;
    for (const [key, t] of this.byKey) {
      if (mono - t.atMono < this.retentionMs) break;
      this.byKey.delete(key);
      n++;
    }
    return n;
  }
}
