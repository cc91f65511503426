/**
 * The state journal's record format: one JSON line per record, each with the
 * CRC32 of its own text, so a torn or flipped line is found and dropped alone.
 *
 *   {"c":"1a2b3c4d","r":{"op":"put","e":{...ping entry...}}}
 *   {"c":"5e6f7a8b","r":{"op":"ack","worker":"w1","instance":"i1"}}
 *
 * `put` stores (or replaces) an unaccepted `stopped`/`lost` entry; `ack`
 * forgets it (accepted by the platform, or no longer terminal). Pure.
 */
import { crc32 } from 'node:zlib';
import { PingWorker } from '../protocol/schemas.js';

export type JournalRecord =
  | { op: 'put'; e: PingWorker }
  | { op: 'ack'; worker: string; instance: string };

/** Why a line was dropped: `torn` is a last line without its newline (a crash mid-write). */
export type DropReason = 'torn' | 'checksum' | 'json' | 'schema';

export interface Replayed {
  entries: PingWorker[];
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
  return `${e.state}|${e.since}|${e.seq}|${e.beats}|${e.reason ?? ''}`;
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
  if (rec.op === 'ack' && typeof rec.worker === 'string' && typeof rec.instance === 'string') {
    return { ok: true, record: { op: 'ack', worker: rec.worker, instance: rec.instance } };
  }
  return { ok: false, why: 'schema' };
}

/** Replays a journal file: puts and acks by key, every damaged line dropped and counted. */
export function replay(buf: Buffer): Replayed {
  const live = new Map<string, PingWorker>();
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
    if (r.op === 'put') live.set(keyOf(r.e.worker, r.e.instance), r.e);
    else live.delete(keyOf(r.worker, r.instance));
  }
  return { entries: [...live.values()], dropped, samples, lines };
}
