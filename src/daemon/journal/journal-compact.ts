/**
 * The state journal's compaction: what a rewrite keeps of the retirements,
 * and how the live set is written (a temporary file, fsynced, renamed over
 * the journal, the directory fsynced), in slices so a large live set never
 * blocks the event loop for long.
 */
import { open, rename } from 'node:fs/promises';
import type { RetiredInstance } from '../../core/tombstones.js';
import type { PingWorker } from '../../protocol/schemas.js';
import { encodeRecord, entryRecord, keyOf, signature, type RetireRecord } from './journal-record.js';

/** An entry the file holds (terminal or live), and the signature it was written with. */
export interface Held {
  worker: string;
  instance: string;
  sig: string;
}

/** Records encoded and written at a time. */
const SLICE = 2048;

/**
 * The retirements in force (the registry's tombstones: one per instance,
 * oldest first) as the retire records a compaction keeps: younger than
 * `retentionMs`, the newest `max`. One pass, no sort: it runs on the event
 * loop with up to max_tombstones of them.
 */
export function retirementsInForce(
  list: readonly RetiredInstance[],
  nowWall: number,
  retentionMs: number,
  max: number,
): RetireRecord[] {
  const out: RetireRecord[] = [];
  for (const r of list) {
    if (r.ageMs < retentionMs) out.push({ op: 'retire', worker: r.worker, instance: r.instance, as: r.as, at: nowWall - r.ageMs });
  }
  return out.length > max ? out.slice(out.length - max) : out;
}

/**
 * Writes the live set to `tmp` (retirements first, then terminal entries and
 * live instances) and fsyncs it. Returns its size and what it holds. Each
 * slice is its own write: the event loop runs between them.
 */
export async function writeLiveSet(
  tmp: string,
  entries: readonly PingWorker[],
  retired: readonly RetireRecord[],
): Promise<{ bytes: number; held: Map<string, Held> }> {
  const held = new Map<string, Held>();
  const out = await open(tmp, 'w', 0o644);
  let bytes = 0;
  const write = async (text: string) => {
    const buf = Buffer.from(text);
    await out.writeFile(buf); // at the current position: the slices follow one another
    bytes += buf.length;
  };
  try {
    for (let i = 0; i < retired.length; i += SLICE) await write(retired.slice(i, i + SLICE).map(encodeRecord).join(''));
    for (let i = 0; i < entries.length; i += SLICE) {
      const slice = entries.slice(i, i + SLICE);
      for (const e of slice) held.set(keyOf(e.worker, e.instance), { worker: e.worker, instance: e.instance, sig: signature(e) });
      await write(slice.map((e) => encodeRecord(entryRecord(e))).join(''));
    }
    await out.sync();
  } finally {
    await out.close();
  }
  return { bytes, held };
}

/** Renames `tmp` over `file` and fsyncs `dir`, so the rename itself survives a crash. */
export async function replaceDurably(tmp: string, file: string, dir: string): Promise<void> {
  await rename(tmp, file);
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
