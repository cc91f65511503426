/**
 * What a worker reports about itself in each beat (status, inflight, load,
 * meta), and the cleaning that keeps a sloppy callback from producing a
 * beat the daemon would reject: bad fields are dropped, not sent.
 */
import { MAX_META_BYTES } from '../protocol/schemas.js';

export type MetaValue = string | number | boolean;

export interface WorkerSnapshot {
  /** `busy` while working on something; default `idle`. */
  status?: 'idle' | 'busy';
  /** Tasks in progress (an integer >= 0). */
  inflight?: number;
  /** 0..1; clamped. */
  load?: number;
  /** Flat key/values, at most 2 KiB serialized; dropped whole when bigger. */
  meta?: Record<string, MetaValue>;
}

const RESERVED_META_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** The beat fields of `s`, valid per docs/PROTOCOL.md section 1, and the names of fields that were dropped. */
export function cleanSnapshot(s: unknown): { fields: WorkerSnapshot; dropped: string[] } {
  const fields: WorkerSnapshot = {};
  const dropped: string[] = [];
  if (typeof s !== 'object' || s === null) return { fields, dropped: s === undefined ? [] : ['(not an object)'] };
  const { status, inflight, load, meta } = s as Record<string, unknown>;
  if (status === 'idle' || status === 'busy') fields.status = status;
  else if (status !== undefined) dropped.push('status');
  if (typeof inflight === 'number' && Number.isFinite(inflight) && inflight >= 0) fields.inflight = Math.floor(inflight);
  else if (inflight !== undefined) dropped.push('inflight');
  if (typeof load === 'number' && Number.isFinite(load)) fields.load = Math.min(1, Math.max(0, load));
  else if (load !== undefined) dropped.push('load');
  if (meta !== undefined) {
    const clean = cleanMeta(meta);
    if (clean) fields.meta = clean;
    else dropped.push('meta');
  }
  return { fields, dropped };
}

function cleanMeta(meta: unknown): Record<string, MetaValue> | undefined {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return undefined;
  const out: Record<string, MetaValue> = {};
  for (const [key, value] of Object.entries(meta)) {
    if (RESERVED_META_KEYS.has(key)) continue;
    if (typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) {
      out[key] = value;
    }
  }
  return Buffer.byteLength(JSON.stringify(out)) <= MAX_META_BYTES ? out : undefined;
}
