/**
 * The state journal: the `stopped` and `lost` entries the platform has not
 * accepted yet survive kill -9 and restart (docs/PROTOCOL.md 2.7), and so do
 * retired instances, whose beats stay suppressed (2.3), and the instances
 * alive with their `beats_total` (reported `lost` if they never beat again).
 *
 * An append-only file of JSON lines, one record per line with its own CRC32
 * (the format: `journal-record.ts`).
 *
 * `sync()` diffs what must be durable (unaccepted terminal entries, live
 * instances) against the file and appends only the difference; a retirement
 * (`retire()`) is an event queued into the next commit. Writes are
 * group-committed: a burst of events costs one write and one fdatasync.
 * Compaction (`journal-compact.ts`: temp file, fsync, rename, dir fsync) runs
 * on the daemon's cron schedule and whenever the appended records outgrow the
 * live set; it keeps the retire records younger than the retention, at most
 * `maxRetired`.
 *
 * The file itself is `journal-file.ts`; this module is its lifecycle, the
 * state-dir lock and the group commit. Reading is forgiving: a torn last line,
 * a bad checksum or an unparseable record is dropped and counted, the file is
 * rewritten clean before anything is appended: a warning, never a crash loop.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { PingWorker } from '../../protocol/schemas.js';
import type { RetiredAs, RetiredInstance } from '../../core/tombstones.js';
import { retirementsInForce } from './journal-compact.js';
import { JournalFile, type JournalStats } from './journal-file.js';
import { restoreStateDir, whyDetached } from './journal-path.js';
import { liveRetirements, type RetireRecord } from './journal-record.js';
import { StateLock } from './state-lock.js';

export const JOURNAL_FILE = 'terminals.jsonl';
/** Default size of appended records that triggers a compaction (on top of the live set). */
export const DEFAULT_COMPACT_BYTES = 4 * 1024 * 1024;
/** Defaults of `workers.tombstone_retention_ms` and `workers.max_tombstones`. */
const DEFAULT_RETIRE_RETENTION_MS = 600_000;
const DEFAULT_MAX_RETIRED = 100_000;

const noop = (): void => undefined;

export type JournalState = 'created' | 'opening' | 'open' | 'closing' | 'closed';

export interface JournalOptions {
  dir: string;
  log: Logger;
  /** Written into the lock file. */
  instance: string;
  /** What must be durable now: the registry's unaccepted terminal entries and live instances. */
  source(): readonly PingWorker[];
  /** Appended bytes (beyond the live set) that trigger a compaction. Default 4 MiB. */
  compactBytes?: number;
  /**
   * The retired instances in force now and their age, oldest first, each
   * once (the registry's tombstones): what a compaction rewrites. It must
   * already hold every retirement passed to `retire()`. Without it, a
   * compaction keeps only the records still queued.
   */
  retired?(): readonly RetiredInstance[];
  /** How long retire records are kept (wall-clock age). Default 10 min. */
  retentionMs?: number;
  /** At most this many retire records are kept, the newest. Default 100,000. */
  maxRetired?: number;
  /** Wall-clock ms, for the age of retire records. Default `Date.now`. */
  wallNow?(): number;
}

export type { JournalStats } from './journal-file.js';

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

export class Journal {
  readonly file: string;
  private _state: JournalState = 'created';
  private lock: StateLock | undefined;
  private readonly out: JournalFile;
  private waiters: Waiter[] = [];
  private flushing: Promise<void> | undefined;
  private compactWanted = false;
  /** A failed write leaves the file's tail unknown: the next commit rewrites it whole. */
  private broken = false;
  private closing: Promise<void> | undefined;
  /** Retire records for the next commit. */
  private pending: RetireRecord[] = [];
  /** What open() replayed, until `takeRetired()`. */
  private replayed: RetireRecord[] = [];
  readonly stats: JournalStats = {
    records: 0, retires: 0, commits: 0, syncs: 0, compactions: 0, bytes: 0, held: 0, retiredKept: 0, dropped: 0, reattached: 0,
  };

  constructor(private readonly o: JournalOptions) {
    this.file = path.join(o.dir, JOURNAL_FILE);
    this.out = new JournalFile(this.file, o.dir, o.log, o.compactBytes ?? DEFAULT_COMPACT_BYTES, this.stats);
  }

  get state(): JournalState {
    return this._state;
  }

  /** The last write failed (the next commit rewrites the file): for `status`. */
  get writeFailed(): boolean {
    return this.broken;
  }

  private set state(next: JournalState) {
    this.o.log.debug({ from: this._state, to: next, file: this.file }, `journal ${next}`);
    this._state = next;
  }

  /**
   * Locks the state directory (throws `StateDirLockedError` if another daemon
   * holds it), reads and repairs the journal, and returns the entries to restore.
   */
  async open(): Promise<PingWorker[]> {
    if (this._state !== 'created') throw new Error(`journal is ${this._state}; open() runs once`);
    this.state = 'opening';
    const { dir, log } = this.o;
    try {
      await mkdir(dir, { recursive: true });
      this.lock = StateLock.acquire(dir, this.o.instance);
      if (this.lock.staleWhy !== undefined) {
        log.warn({ dir, stale_pid: this.lock.staleOwner, why: this.lock.staleWhy }, 'took over a stale state-dir lock (its daemon is gone)');
      }
      // A compaction interrupted before its rename left a temporary file; the journal itself is whole.
      await rm(`${this.file}.tmp`, { force: true });
      const { entries, retired } = await this.out.read();
      this.replayed = this.keep(retired);
      await this.rewrite(entries, this.replayed);
      this.state = 'open';
      log.info(
        { file: this.file, restored: entries.length, retired: this.replayed.length, bytes: this.stats.bytes },
        'state journal open',
      );
      return entries;
    } catch (err) {
      await this.out.close();
      this.lock?.release();
      this.state = 'closed';
      throw err;
    }
  }

  /**
   * Resolves once every terminal entry the registry holds now is durable (and
   * every accepted one is marked so). Calls made while a commit is being
   * written share the next commit.
   */
  sync(): Promise<void> {
    // Closed after use: the daemon is stopping, and what happens now can no longer be made durable (a Leave gets an error).
    if (this._state === 'closed' && this.closing) return Promise.reject(new Error('the state journal is closed: the daemon is stopping'));
    if (this._state !== 'open' && this._state !== 'closing') return Promise.resolve();
    this.stats.syncs++;
    return this.enqueue();
  }

  /** The retirements open() replayed (younger than the retention, oldest first); handed out once. */
  takeRetired(): RetireRecord[] {
    const out = this.replayed;
    this.replayed = [];
    return out;
  }

  /**
   * Queues a retire record into the next commit (which it starts). To know
   * when it is durable, `sync()` after it: that resolves after the commit
   * holding it. Ignored unless open.
   */
  retire(worker: string, instance: string, as: RetiredAs, at: number): void {
    if (this._state !== 'open' && this._state !== 'closing') return;
    this.pending.push({ op: 'retire', worker, instance, as, at });
    this.waiters.push({ resolve: noop, reject: noop });
    this.flushing ??= this.drain();
  }

  /** Rewrites the journal to just the live set, at its path (the cron job; also on growth, and for the state_dir check). */
  compact(): Promise<void> {
    if (this._state !== 'open') return Promise.resolve();
    this.compactWanted = true;
    return this.enqueue();
  }

  /** Writes what is owed, closes the file and releases the lock. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this._state !== 'open') {
      this.state = 'closed';
      return;
    }
    this.state = 'closing';
    try {
      await this.enqueue();
    } catch (err) {
      this.o.log.error({ err, file: this.file }, 'final journal write failed');
    }
    // Syncs asked for while closing are served before the file closes.
    while (this.flushing) await this.flushing;
    this._state = 'closed';
    await this.out.close();
    this.lock?.release();
    this.o.log.debug({ file: this.file, ...this.stats }, 'journal closed');
  }

  private enqueue(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.flushing ??= this.drain();
    });
  }

  private async drain(): Promise<void> {
    // Let everything this turn of the event loop does join the commit.
    await new Promise((r) => setImmediate(r));
    while (this.waiters.length > 0) {
      const batch = this.waiters;
      this.waiters = [];
      try {
        if (this.compactWanted || this.broken) {
          this.compactWanted = false;
          await this.rewriteHere([]);
          this.stats.compactions++;
        } else {
          await this.commit();
        }
        for (const w of batch) w.resolve();
      } catch (err) {
        this.broken = true;
        this.o.log.error({ err, file: this.file }, 'state journal write failed; the next write rewrites it whole');
        for (const w of batch) w.reject(err);
      }
    }
    this.flushing = undefined;
  }

  /** Appends the queued retirements and the registry's difference; never to a file no restart would read (checked before and after). */
  private async commit(): Promise<void> {
    const retires = this.pending.splice(0);
    const commits = this.stats.commits;
    const outgrown = await this.out.append(this.o.source(), retires, () => this.rewriteHere(retires, true));
    if (this.stats.commits > commits && (await this.rewriteHere(retires, true))) return;
    if (outgrown) {
      this.compactWanted = true;
      this.waiters.push({ resolve: noop, reject: noop });
    }
  }

  /** Why the journal is not where a restart would look (`journal-path.ts`); the state_dir check fails meanwhile. */
  async detached(): Promise<string | undefined> {
    return this._state === 'open' || this._state === 'closing' ? whyDetached(this.out, this.lock) : undefined;
  }

  /** A full rewrite at the path, dir and lock put back first if deleted; with `onlyIfDetached`, only then. */
  private async rewriteHere(retires: readonly RetireRecord[], onlyIfDetached = false): Promise<boolean> {
    const why = await this.detached();
    if (why === undefined && onlyIfDetached) return false;
    if (why !== undefined) this.o.log.error({ file: this.file, why, times: ++this.stats.reattached }, 'state journal detached from its path; writing it and the lock back');
    await restoreStateDir(this.o.dir, this.lock);
    await this.rewrite(this.o.source(), this.inForce(retires)); // `retires`: those of the commit in progress
    return true;
  }

  /** Of some retire records, those a rewrite keeps: one per instance, young enough, the newest within the limit. */
  private keep(records: Iterable<RetireRecord>): RetireRecord[] {
    return liveRetirements(records, this.wallNow(), this.retentionMs, this.maxRetired);
  }

  /** What a compaction keeps: the retirements in force (the queued ones are among them), young enough, the newest. */
  private inForce(extra: readonly RetireRecord[] = []): RetireRecord[] {
    const queued = [...extra, ...this.pending.splice(0)];
    if (this.o.retired === undefined) return this.keep(queued);
    return retirementsInForce(this.o.retired(), this.wallNow(), this.retentionMs, this.maxRetired);
  }

  private wallNow(): number {
    return this.o.wallNow?.() ?? Date.now();
  }

  private get retentionMs(): number {
    return this.o.retentionMs ?? DEFAULT_RETIRE_RETENTION_MS;
  }

  private get maxRetired(): number {
    return this.o.maxRetired ?? DEFAULT_MAX_RETIRED;
  }

  /** Rewrites the file to this live set; a clean file is no longer broken. */
  private async rewrite(entries: readonly PingWorker[], retired: readonly RetireRecord[]): Promise<void> {
    await this.out.rewrite(entries, retired);
    this.broken = false;
  }
}
