/**
 * The journal's file, and nothing of its lifecycle, lock or commit batching
 * (`journal.ts`): reads it at open (every damaged line dropped and counted),
 * appends what changed since the last write (one write, one fdatasync), and
 * rewrites it whole to a live set (temp file, fsync, rename over the journal,
 * fsync of the directory: `journal-compact.ts`).
 */
import { open, readFile, type FileHandle } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { PingWorker } from '../../protocol/schemas.js';
import { replaceDurably, writeLiveSet, type Held } from './journal-compact.js';
import { detachedFrom } from './journal-path.js';
import { encodeRecord, entryRecord, keyOf, replay, signature, type RetireRecord } from './journal-record.js';

export interface JournalStats {
  /** Records appended (put + live + ack + retire), since open. */
  records: number;
  /** Retire records appended, since open. */
  retires: number;
  /** Group commits written (each one write + one fdatasync). */
  commits: number;
  /** `sync()` calls served; `syncs / commits` is the batching factor. */
  syncs: number;
  compactions: number;
  /** Current file size. */
  bytes: number;
  /** Entries the file holds. */
  held: number;
  /** Retire records the last rewrite kept. */
  retiredKept: number;
  /** Records dropped when the journal was read at open. */
  dropped: number;
  /** Times the journal was written back to its path after the file or the lock went missing. */
  reattached: number;
}

export class JournalFile {
  private fh: FileHandle | undefined;
  /** The terminal entries the file holds, by key, with the signature of their last put. */
  private held = new Map<string, Held>();
  /** File size right after the last rewrite: the live set. */
  private baseBytes = 0;

  constructor(
    readonly file: string,
    private readonly dir: string,
    private readonly log: Logger,
    /** Appended bytes (beyond the live set) after which `append` asks for a compaction. */
    private readonly compactBytes: number,
    /** Shared with the journal, which counts syncs and compactions itself. */
    private readonly stats: JournalStats,
  ) {}

  /** Replays the journal: puts and acks by key, retirements by key, every damaged line dropped and counted. */
  async read(): Promise<{ entries: PingWorker[]; retired: RetireRecord[] }> {
    let buf: Buffer;
    try {
      buf = await readFile(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [], retired: [] };
      throw new Error(`cannot read the state journal ${this.file}: ${(err as Error).message}`);
    }
    const { entries, retired, dropped, samples, lines } = replay(buf);
    const total = Object.values(dropped).reduce((n, c) => n + c, 0);
    this.stats.dropped = total;
    if (total > 0) {
      this.log.warn(
        { file: this.file, dropped, samples, kept: entries.length + retired.length, lines },
        `state journal: dropped ${total} damaged record(s), kept every whole one`,
      );
    }
    return { entries, retired };
  }

  /**
   * Appends the retire records and the difference between `source` (what
   * must be durable now) and the file, then one fdatasync. Returns true when
   * the appended records have outgrown the live set: time to compact.
   * `superseded`, asked right before the write, may rewrite the file whole
   * instead (the state dir was deleted): then nothing is appended.
   */
  async append(
    source: readonly PingWorker[],
    retires: readonly RetireRecord[],
    superseded?: () => Promise<boolean>,
  ): Promise<boolean> {
    const lines = retires.map(encodeRecord);
    const seen = new Set<string>();
    for (const e of source) {
      const k = keyOf(e.worker, e.instance);
      seen.add(k);
      const sig = signature(e);
      if (this.held.get(k)?.sig === sig) continue;
      this.held.set(k, { worker: e.worker, instance: e.instance, sig });
      lines.push(encodeRecord(entryRecord(e)));
    }
    for (const [k, h] of this.held) {
      if (seen.has(k)) continue;
      this.held.delete(k);
      lines.push(encodeRecord({ op: 'ack', worker: h.worker, instance: h.instance }));
    }
    this.stats.held = this.held.size;
    if (lines.length === 0) return false;
    if (superseded && (await superseded())) return false;
    const data = lines.join('');
    const fh = this.fh;
    if (fh === undefined) throw new Error('journal file is not open');
    await fh.appendFile(data);
    await fh.datasync();
    this.stats.records += lines.length;
    this.stats.retires += retires.length;
    this.stats.commits++;
    this.stats.bytes += Buffer.byteLength(data);
    return this.stats.bytes - this.baseBytes > Math.max(this.compactBytes, this.baseBytes);
  }

  /**
   * Temp file, fsync, rename over the journal, fsync the directory; then
   * append to the new file. What changes while the live set is written (in
   * slices) goes to the next commit.
   */
  async rewrite(entries: readonly PingWorker[], retired: readonly RetireRecord[]): Promise<void> {
    const tmp = `${this.file}.tmp`;
    const { bytes, held } = await writeLiveSet(tmp, entries, retired);
    await this.close();
    await replaceDurably(tmp, this.file, this.dir);
    this.fh = await open(this.file, 'a', 0o644);
    this.held = held;
    this.baseBytes = this.stats.bytes = bytes;
    this.stats.held = held.size;
    this.stats.retiredKept = retired.length;
  }

  /** Why the open file is not the one at its path any more, or undefined (`journal-path.ts`). */
  detached(): Promise<string | undefined> {
    return detachedFrom(this.fh, this.file);
  }

  async close(): Promise<void> {
    await this.fh?.close().catch(() => undefined);
    this.fh = undefined;
  }
}
