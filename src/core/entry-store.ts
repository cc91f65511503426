/**
 * Where the registry keeps its entries: the current instance of each worker
 * (`live`), replaced instances still owed to the platform (`displaced`), the
 * accepted `lost` entries that may be forgotten (`evictable`) and the
 * tombstones. Bounded: at most `maxWorkers` live and displaced entries each.
 * The registry decides; this only stores, finds, evicts and shows. Pure.
 */
import type { PingWorker, WorkerState } from '../protocol/schemas.js';
import { leftAs, toLiveRecord, toPingWorker, type Entry } from './entry.js';
import type { Instant } from './time.js';
import { Tombstones, instanceKey, type RetiredAs, type RetiredInstance } from './tombstones.js';

export interface EntryStoreOptions {
  maxWorkers: number;
  tombstoneRetentionMs: number;
  maxTombstones: number;
}

export class EntryStore {
  readonly live = new Map<string, Entry>();
  readonly displaced = new Map<string, Entry>();
  /** Accepted `lost` entries (by worker), oldest first: evicted first when at capacity. */
  readonly evictable = new Set<string>();
  readonly tombstones: Tombstones;
  /** Replaced instances dropped because too many piled up (a counter for metrics and logs). */
  droppedDisplaced = 0;

  constructor(private readonly opts: EntryStoreOptions) {
    this.tombstones = new Tombstones(opts.tombstoneRetentionMs, opts.maxTombstones);
  }

  find(worker: string, instance: string): Entry | undefined {
    const live = this.live.get(worker);
    return live !== undefined && live.instance === instance ? live : this.displaced.get(instanceKey(worker, instance));
  }

  /** How a displaced instance is retired (`replaced` unless it had left), if it is displaced. */
  displacedAs(worker: string, instance: string): RetiredAs | undefined {
    if (this.displaced.size === 0) return undefined;
    const d = this.displaced.get(instanceKey(worker, instance));
    return d === undefined ? undefined : (leftAs(d) ?? 'replaced');
  }

  *all(): IterableIterator<Entry> {
    yield* this.displaced.values();
    yield* this.live.values();
  }

  /** Keeps a replaced instance that is still owed; beyond `maxWorkers` the oldest goes (counted). */
  displace(e: Entry): void {
    this.displaced.set(instanceKey(e.worker, e.instance), e);
    if (this.displaced.size > this.opts.maxWorkers) {
      // A worker flapping through restarts while the platform is down: keep memory bounded, say so.
      const oldest = this.displaced.keys().next().value as string;
      this.displaced.delete(oldest);
      this.droppedDisplaced++;
    }
  }

  /** At capacity, forget the oldest `lost` entry the platform already knows about. */
  makeRoom(): boolean {
    if (this.live.size < this.opts.maxWorkers) return true;
    for (const worker of this.evictable) {
      this.evictable.delete(worker);
      const e = this.live.get(worker);
      if (e?.state === 'lost' && !e.unacked) {
        this.live.delete(worker);
        return true;
      }
    }
    return false;
  }

  /** Forgets expired tombstones and `lost` entries accepted longer ago than the retention. */
  prune(t: Instant): { tombstones: number; lost: number } {
    const tombstones = this.tombstones.prune(t.mono);
    let lost = 0;
    for (const worker of this.evictable) {
      const e = this.live.get(worker);
      if (e !== undefined && t.mono - (e.ackedMono ?? t.mono) < this.opts.tombstoneRetentionMs) break;
      this.evictable.delete(worker);
      if (e?.state === 'lost' && !e.unacked) this.live.delete(worker);
      lost++;
    }
    return { tombstones, lost };
  }

  /** Every tracked entry as a ping would show it (a stopped one leaves once accepted; see README /v1/workers). */
  snapshot(): PingWorker[] {
    return [...this.all()].map(toPingWorker);
  }

  countByState(): Record<WorkerState, number> {
    const counts: Record<WorkerState, number> = { active: 0, draining: 0, stopped: 0, lost: 0 };
    for (const e of this.all()) counts[e.state]++;
    return counts;
  }

  /** Terminal entries the platform has not accepted: what must survive a crash. */
  unackedTerminals(): PingWorker[] {
    const out: PingWorker[] = [];
    for (const e of this.all()) if (e.unacked) out.push(toPingWorker(e));
    return out;
  }

  /**
   * What the state journal must hold now: every unaccepted terminal entry,
   * and every `active` instance (without meta), so that one that dies while
   * the daemon is down is still reported after a restart.
   */
  durable(): PingWorker[] {
    const out: PingWorker[] = [];
    for (const e of this.all()) {
      if (e.unacked) out.push(toPingWorker(e));
      else if (e.state === 'active') out.push(toLiveRecord(e));
    }
    return out;
  }

  /** Every retired instance with its age, oldest first: what the state journal keeps across a restart. */
  retiredInstances(t: Instant): RetiredInstance[] {
    return this.tombstones.list(t.mono);
  }
}
