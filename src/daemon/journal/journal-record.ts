/**
 * The state journal's record format: one JSON line per record, each with the
 * CRC32 of its own text, so a torn or flipped line is found and dropped alone.
 *
 *   {"c":"1a2b3c4d","r":{"op":"put","e":{...ping entry...}}}
 *   {"c":"5e6f7a8b","r":{"op":"ack","worker":"w1","instance":"i1"}}
 *   {"c":"9c0d1e2f","r":{"op":"retire","worker":"w1","instance":"i1","as":"draining","at":1763719200123}}
 *   {"c":"0a1b2c3d","r":{"op":"live","e":{...ping entry, state active, no meta...}}}
 *
 * `put` stores (or replaces) an unaccepted `stopped`/`lost` entry; `live`
 * stores (or replaces) an instance that is `active`, with its `beats_total`,
 * so one that dies while the daemon is down is still reported `lost` after a
 * restart; `ack` forgets either (accepted by the platform, or gone).
 * A journal from before `live` simply has none. `retire` says
 * an instance was retired (a Leave, or replaced by a restart) at wall time
 * `at`, so its beats stay suppressed after a restart (docs/PROTOCOL.md 2.3); it is
 * an event, never acked: it ages out at compaction. Pure.
 */
import { crc32 } from 'node:zlib';
import type { RetiredAs } from '../../core/tombstones.js';
import { PingWorker } from '../../protocol/schemas.js';

export interface RetireRecord {
  op: 'retire';
  worker: string;
  instance: string;
  as: RetiredAs;
  /** Wall-clock ms of the retirement. */
  at: number;
}

export type JournalRecord =
  | { op: 'put'; e: PingWorker }
  | { op: 'live'; e: PingWorker }
  | { op: 'ack'; worker: string; instance: string }
  | RetireRecord;

/** Why a line was dropped: `torn` is a last line without its newline (a crash mid-write). */
export type DropReason = 'torn' | 'checksum' | 'json' | 'schema';

export interface Replayed {
  entries: PingWorker[];
  /** The last retire record of each instance, in the order they were last written. */
  retired: RetireRecord[];
  dropped: Partial<Record<DropReason, number>>;
  /** The first few dropped lines (1-based), for the log. */
  samples: { line: number; why: DropReason }[];
  lines: number;
}

/** worker ids never contain `/`, so this key is unambiguous. */
export function keyOf(worker: string, instance: string): string {
  return `${worker}/${instance}`;
}

/** What makes a stored entry out of date. */
export function signature(e: PingWorker): string {
  return `${e.state}|${e.since}|${e.seq}|${e.beats}|${e.beats_total ?? ''}|${e.reason ?? ''}`;
}

/** The record that stores an entry: `put` for a terminal one, `live` for one alive. */
export function entryRecord(e: PingWorker): JournalRecord {
  return e.state === 'stopped' || e.state === 'lost' ? { op: 'put', e } : { op: 'live', e };
}

const hex = (n: number) => n.toString(16).padStart(8, '0');

export function encodeRecord(r: JournalRecord): string {
  const body = JSON.stringify(r);
  return `{"c":"${hex(crc32(body))}","r":${body}}\n`;
}

const HEAD = '{"c":"';
const MID = '","r":';

export function decodeLine(line: string): { ok: true; record: JournalRecord } | { ok: false; why: DropReason } {
  const crcEnd = HEAD.length + 8;
  if (!line.startsWith(HEAD) || line.slice(crcEnd, crcEnd + MID.length) !== MID || !line.endsWith('}')) {
    return { ok: false, why: 'json' };
  }
  const body = line.slice(crcEnd + MID.length, -1);
  if (hex(crc32(body)) !== line.slice(HEAD.length, crcEnd)) return { ok: false, why: 'checksum' };
  let r: unknown;
  try {
    r = JSON.parse(body);
  } catch {
    return { ok: false, why: 'json' };
  }
  if (typeof r !== 'object' || r === null) return { ok: false, why: 'schema' };
  const rec = r as Record<string, unknown>;
  if (rec.op === 'put') {
    const e = PingWorker.safeParse(rec.e);
    if (!e.success || (e.data.state !== 'stopped' && e.data.state !== 'lost')) return { ok: false, why: 'schema' };
    return { ok: true, record: { op: 'put', e: e.data } };
  }
  if (rec.op === 'live') {
    const e = PingWorker.safeParse(rec.e);
    if (!e.success || e.data.state !== 'active') return { ok: false, why: 'schema' };
    return { ok: true, record: { op: 'live', e: e.data } };
  }
  if (rec.op === 'ack' && typeof rec.worker === 'string' && typeof rec.instance === 'string') {
    return { ok: true, record: { op: 'ack', worker: rec.worker, instance: rec.instance } };
  }
  if (
    rec.op === 'retire' && typeof rec.worker === 'string' && typeof rec.instance === 'string' &&
    RETIRED_AS.has(rec.as) && typeof rec.at === 'number' && Number.isFinite(rec.at)
  ) {
    return { ok: true, record: { op: 'retire', worker: rec.worker, instance: rec.instance, as: rec.as as RetiredAs, at: rec.at } };
  }
  return { ok: false, why: 'schema' };
}

const RETIRED_AS: ReadonlySet<unknown> = new Set<RetiredAs>(['draining', 'stopped', 'replaced']);

/**
 * The retire records worth keeping at `nowWall`: one per instance (the last
 * given wins), younger than `retentionMs` (a record from the future, after the
 * wall clock stepped back, counts as new), at most `max` of them (the newest),
 * oldest first.
 */
export function liveRetirements(
  records: Iterable<RetireRecord>,
  nowWall: number,
  retentionMs: number,
  max: number,
): RetireRecord[] {
  const last = new Map<string, RetireRecord>();
  for (const r of records) {
    const k = keyOf(r.worker, r.instance);
    last.delete(k);
    last.set(k, r);
  }
  const kept = [...last.values()].filter((r) => nowWall - r.at < retentionMs).sort((a, b) => a.at - b.at);
  return kept.length > max ? kept.slice(kept.length - max) : kept;
}

/** Replays a journal file: puts, lives and acks by key (`entries` holds both kinds), retirements by key, every damaged line dropped and counted. */
export function replay(buf: Buffer): Replayed {
  const live = new Map<string, PingWorker>();
  const retired = new Map<string, RetireRecord>();
  const dropped: Partial<Record<DropReason, number>> = {};
  const samples: { line: number; why: DropReason }[] = [];
  let start = 0;
  let lines = 0;
  while (start < buf.length) {
    const nl = buf.indexOf(0x0a, start);
    const end = nl === -1 ? buf.length : nl;
    lines++;
    const text = buf.toString('utf8', start, end);
    start = end + 1;
    if (text.trim() === '') continue;
    const out = nl === -1 ? ({ ok: false, why: 'torn' } as const) : decodeLine(text);
    if (!out.ok) {
      dropped[out.why] = (dropped[out.why] ?? 0) + 1;
      if (samples.length < 10) samples.push({ line: lines, why: out.why });
      continue;
    }
    const r = out.record;
    if (r.op === 'put' || r.op === 'live') live.set(keyOf(r.e.worker, r.e.instance), r.e);
    else if (r.op === 'ack') live.delete(keyOf(r.worker, r.instance));
    else {
      const k = keyOf(r.worker, r.instance);
      retired.delete(k); // re-inserted: the order is that of the last retirement
      retired.set(k, r);
    }
  }
  return { entries: [...live.values()], retired: [...retired.values()], dropped, samples, lines };
}
