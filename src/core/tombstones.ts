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
