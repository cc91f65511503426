/**
 * Runs the pure ledger against a store with optimistic concurrency: read the
 * node's record (this replica's cache first), compute, compare-and-set on the
 * revision; when another replica wrote first, read again and recompute, a
 * bounded number of times. The batch id goes into the record in the same
 * write, so a ping is applied once whichever replica gets each try.
 *
 * Events are written into the record (its outbox) with the change itself,
 * then published; whoever finds an outbox left behind (a failed publish, a
 * crash in between) publishes it again, and the stream drops repeats by id.
 */
import type { Ping } from '../protocol/schemas.js';
import type { DeltaVerdict } from './delta.js';
import type { Instant } from '../core/time.js';
import { applyPing, expireNode, type LedgerOptions, type RecordEvent } from './ledger.js';
import type { ReceiverMetrics } from './metrics.js';
import type { NodeRecord } from './record.js';
import { StoreUnavailableError, type ReceiverStore, type StoredNode } from './store/types.js';

export interface WriterLogger {
  warn(obj: object, msg: string): void;
}

export interface WriterDeps {
  store: ReceiverStore;
  metrics: ReceiverMetrics;
  ledger: LedgerOptions;
  /** Tries per change before giving up with a 503. */
  maxAttempts: number;
  /** An outbox older than this is published by the sweep. */
  outboxGraceMs: number;
  /** A node expired or final for this long (since its last ping) is deleted from the store. */
  forgetAfterMs: number;
  /** Told each event this replica wrote, in order. */
  emit(events: readonly RecordEvent[]): void;
  log: WriterLogger;
}

/** A short random pause after a lost race, growing with each try, so the replica that keeps winning lets the other through. */
const backoff = (attempt: number) => new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(100, 2 ** attempt)));

export type ApplyOutcome =
  | { outcome: 'applied'; events: RecordEvent[]; verdict?: DeltaVerdict }
  | { outcome: 'duplicate' }
  /** A delta this replica cannot apply (docs/PROTOCOL.md 3.1): nothing written. */
  | { outcome: 'refused'; reason: string };

/** Checks a ping against the node's delta view once it is known not to be a duplicate (delta pings on). */
export type DeltaGate = (ping: Ping) => DeltaVerdict;

export class Writer {
  /** The last queued change of each node: changes of one node take turns within a replica. */
  private readonly tails = new Map<string, Promise<unknown>>();

  constructor(private readonly d: WriterDeps) {}

  /** Applies the ping; pings of one node are applied one after another here, so only other replicas conflict. */
  apply(ping: Ping, t: Instant, gate?: DeltaGate): Promise<ApplyOutcome> {
    const node = ping.node;
    const run = (this.tails.get(node) ?? Promise.resolve()).then(() => this.applyNow(ping, t, gate));
    const tail = run.catch(() => undefined);
    this.tails.set(node, tail);
    void tail.then(() => {
      if (this.tails.get(node) === tail) this.tails.delete(node);
    });
    return run;
  }

  private async applyNow(ping: Ping, t: Instant, gate?: DeltaGate): Promise<ApplyOutcome> {
    let cur = this.d.store.cached(ping.node);
    let verdict: DeltaVerdict | undefined;
    for (let attempt = 1; attempt <= this.d.maxAttempts; attempt++) {
      const leftover = cur?.record.outbox !== undefined ? await this.flush(cur.record.outbox) : [];
      const result = applyPing(cur?.record, ping, t, this.d.ledger);
      if (result.duplicate) return { outcome: 'duplicate' };
      // Once per ping, and only for one not applied before: a repeated part would read as out of order.
      verdict ??= gate?.(ping);
      if (verdict?.kind === 'conflict') return { outcome: 'refused', reason: verdict.reason };
      const committed = await this.commit(ping.node, cur, result.record, [...leftover, ...result.events], t);
      if (committed) {
        this.d.emit(result.events);
        return { outcome: 'applied', events: result.events, ...(verdict === undefined ? {} : { verdict }) };
      }
      this.d.metrics.conflicts.inc();
      await backoff(attempt);
      cur = await this.read(ping.node);
    }
    throw new StoreUnavailableError(`node ${ping.node} changed on every one of ${this.d.maxAttempts} tries`);
  }

  /** Expires passed leases (one replica's write wins each) and publishes outboxes left behind. */
  async sweep(t: Instant): Promise<void> {
    for (const stored of [...this.d.store.all()]) {
      const r = stored.record;
      if (r.state === 'alive' && r.deadline <= t.wall) await this.expire(r.node, stored, t);
      else if (r.outbox !== undefined && (r.outboxAt ?? 0) + this.d.outboxGraceMs <= t.wall) {
        if ((await this.flush(r.outbox)).length === 0) await this.clearOutbox(r.node, r, stored.revision);
      } else if (r.state !== 'alive' && r.outbox === undefined && r.lastPing + this.d.forgetAfterMs <= t.wall) {
        // Nodes that come and go (autoscaling) must not fill the store; one that returns simply appears again.
        this.d.metrics.storeOps.inc({ op: 'write' });
        if (await this.d.store.remove(r.node, stored.revision)) this.d.metrics.forgotten.inc();
      }
    }
  }

  private async expire(node: string, first: StoredNode, t: Instant): Promise<void> {
    let cur: StoredNode | undefined = first;
    for (let attempt = 1; cur !== undefined && attempt <= this.d.maxAttempts; attempt++) {
      const result = expireNode(cur.record, t);
      if (result === undefined) return;
      const leftover = cur.record.outbox !== undefined ? await this.flush(cur.record.outbox) : [];
      if (await this.commit(node, cur, result.record, [...leftover, ...result.events], t)) {
        this.d.metrics.expired.inc();
        this.d.emit(result.events);
        return;
      }
      this.d.metrics.conflicts.inc();
      await backoff(attempt);
      cur = await this.read(node);
    }
  }

  /** Writes the record with its events in the outbox, then publishes them and clears it. False on a conflict. */
  private async commit(node: string, base: StoredNode | undefined, record: NodeRecord, events: RecordEvent[], t: Instant): Promise<boolean> {
    // The memory store has no one else to tell: its events go to the local hook only.
    const outbox = events.length > 0 && this.d.store.kind !== 'memory';
    const next: NodeRecord = outbox ? { ...record, outbox: events, outboxAt: t.wall } : record;
    this.d.metrics.storeOps.inc({ op: 'write' });
    const revision = await this.d.store.swap(node, next, base?.revision ?? 0);
    if (revision === undefined) return false;
    if (outbox && (await this.flush(events)).length === 0) await this.clearOutbox(node, record, revision);
    return true;
  }

  /** Publishes; resolves what could not be published (all of it or nothing). */
  private async flush(events: RecordEvent[]): Promise<RecordEvent[]> {
    if (this.d.store.kind === 'memory') return [];
    try {
      this.d.metrics.storeOps.inc({ op: 'publish' }, events.length);
      await this.d.store.publish(events);
      return [];
    } catch (err) {
      this.d.metrics.publishFailures.inc();
      this.d.log.warn({ err: (err as Error).message, events: events.length }, 'could not publish events; they stay in the node record and are retried');
      return events;
    }
  }

  private async clearOutbox(node: string, record: NodeRecord, revision: number): Promise<void> {
    const { outbox: _o, outboxAt: _a, ...clean } = record;
    this.d.metrics.storeOps.inc({ op: 'write' });
    // A conflict or an outage leaves the outbox for the next writer or sweep: its events are out already, repeats are dropped.
    await this.d.store.swap(node, clean, revision).catch(() => undefined);
  }

  private async read(node: string): Promise<StoredNode | undefined> {
    this.d.metrics.storeOps.inc({ op: 'read' });
    return this.d.store.read(node);
  }
}
