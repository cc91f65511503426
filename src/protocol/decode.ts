/**
 * Decoding of worker messages: size first, then JSON, then version, then
 * schema, then the subject check. Each failure names one reason of
 * docs/PROTOCOL.md section 1 and a readable error (what, where, why).
 */
import type { z } from 'zod';
import { Beat, Leave, MAX_BEAT_BYTES, MAX_META_BYTES, PROTOCOL_VERSION, RESERVED_META_KEYS, WORKER_ID_PATTERN } from './schemas.js';

export type RejectReason =
  | 'invalid_json'
  | 'invalid_schema'
  | 'unsupported_version'
  | 'worker_mismatch'
  | 'too_large'
  | 'stale'
  | 'suppressed'
  | 'capacity';

export const REJECT_REASONS: readonly RejectReason[] = [
  'invalid_json',
  'invalid_schema',
  'unsupported_version',
  'worker_mismatch',
  'too_large',
  'stale',
  'suppressed',
  'capacity',
];

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: RejectReason; error: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Formats zod issues as `path: message; path: message`, the path dotted. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.map(String).join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}

/** Parses JSON text or bytes into a value; never throws. */
export function parseJson(data: Uint8Array | string, maxBytes: number): Decoded<unknown> {
  const size = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
  if (size > maxBytes) return { ok: false, reason: 'too_large', error: `message is ${size} bytes, at most ${maxBytes}` };
  let text: string;
  try {
    text = typeof data === 'string' ? data : utf8.decode(data);
  } catch {
    return { ok: false, reason: 'invalid_json', error: 'message is not valid UTF-8' };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, reason: 'invalid_json', error: `message is not JSON: ${(err as Error).message}` };
  }
}

function validate<T>(
  schema: z.ZodType<T>,
  kind: string,
  value: unknown,
  subjectWorker: string | undefined,
): Decoded<T> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'invalid_schema', error: `${kind} must be a JSON object` };
  }
  const v = (value as { v?: unknown }).v;
  if (v !== undefined && v !== PROTOCOL_VERSION) {
    return { ok: false, reason: 'unsupported_version', error: `v: version ${JSON.stringify(v)} is not supported (expected 1)` };
  }
  const meta = (value as { meta?: unknown }).meta;
  if (typeof meta === 'object' && meta !== null) {
    const key = RESERVED_META_KEYS.find((k) => Object.hasOwn(meta, k));
    if (key !== undefined) return { ok: false, reason: 'invalid_schema', error: `${kind} meta.${key}: reserved key is not allowed` };
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) return { ok: false, reason: 'invalid_schema', error: `${kind} ${formatIssues(parsed.error.issues)}` };
  const worker = (parsed.data as { worker: string }).worker;
  if (subjectWorker !== undefined && worker !== subjectWorker) {
    return {
      ok: false,
      reason: 'worker_mismatch',
      error: `worker: body says "${worker}" but the subject names "${subjectWorker}"`,
    };
  }
  return { ok: true, value: parsed.data };
}

/** Validates an already parsed Beat (the HTTP path parses arrays itself). */
export function validateBeat(value: unknown, subjectWorker?: string): Decoded<Beat> {
  const fast = fastBeat(value);
  if (fast !== undefined && (subjectWorker === undefined || fast.worker === subjectWorker)) return { ok: true, value: fast };
  return validate(Beat, 'beat', value, subjectWorker);
}

const hasOwn = Object.hasOwn;
const isInt = (x: unknown, min: number, max: number): x is number =>
  typeof x === 'number' && Number.isSafeInteger(x) && x >= min && x <= max;

/**
 * The hot path without zod: a Beat whose every field is plainly valid is
 * copied field by field, as `Beat.safeParse` returns it (unknown keys
 * dropped, optional keys only when present). Anything else returns
 * undefined and takes the zod path, which finds and words the error, so
 * this may refuse what zod accepts but never accepts what zod refuses
 * (test/unit/decode-fast-path.test.ts checks both against each other).
 * Zod here cost about half of the per-beat CPU (BENCHMARKS.md).
 */
export function fastBeat(value: unknown): Beat | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const o = value as Record<string, unknown>;
  const { worker, instance, seq, interval_ms } = o;
  if (o.v !== PROTOCOL_VERSION) return undefined;
  if (typeof worker !== 'string' || !WORKER_ID_PATTERN.test(worker)) return undefined;
  if (typeof instance !== 'string' || instance.length < 1 || instance.length > 64) return undefined;
  if (!isInt(seq, 0, Number.MAX_SAFE_INTEGER) || !isInt(interval_ms, 100, 600_000)) return undefined;
  const out: Beat = { v: PROTOCOL_VERSION, worker, instance, seq, interval_ms };
  const { ts, status, inflight, load, meta } = o;
  if (ts !== undefined) {
    if (!isInt(ts, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)) return undefined;
    out.ts = ts;
  } else if (hasOwn(o, 'ts')) return undefined;
  if (status !== undefined) {
    if (status !== 'idle' && status !== 'busy') return undefined;
    out.status = status;
  } else if (hasOwn(o, 'status')) return undefined;
  if (inflight !== undefined) {
    if (!isInt(inflight, 0, Number.MAX_SAFE_INTEGER)) return undefined;
    out.inflight = inflight;
  } else if (hasOwn(o, 'inflight')) return undefined;
  if (load !== undefined) {
    if (typeof load !== 'number' || !(load >= 0 && load <= 1)) return undefined;
    out.load = load;
  } else if (hasOwn(o, 'load')) return undefined;
  if (meta !== undefined) {
    const m = fastMeta(meta);
    if (m === undefined) return undefined;
    out.meta = m;
  } else if (hasOwn(o, 'meta')) return undefined;
  return out;
}

/** A plain object of string, finite number and boolean values, no reserved key, small enough; else undefined. */
function fastMeta(meta: unknown): Beat['meta'] | undefined {
  if (typeof meta !== 'object' || meta === null || Object.getPrototypeOf(meta) !== Object.prototype) return undefined;
  const out: Record<string, string | number | boolean> = {};
  // An upper bound of the serialized size: a UTF-16 unit takes at most 6 bytes (`\u001f`), a number at most 26 chars.
  let bound = 2;
  for (const key in meta) {
    if (!hasOwn(meta, key) || RESERVED_META_KEYS.includes(key)) return undefined;
    const v = (meta as Record<string, unknown>)[key];
    if (typeof v === 'string') bound += 6 * v.length + 2;
    else if (typeof v === 'number' && Number.isFinite(v)) bound += 26;
    else if (typeof v === 'boolean') bound += 5;
    else return undefined;
    bound += 6 * key.length + 4;
    out[key] = v;
  }
  // What zod's refinement measures, the serialized size in bytes, computed only when the bound is not enough.
  return bound <= MAX_META_BYTES || Buffer.byteLength(JSON.stringify(out)) <= MAX_META_BYTES ? out : undefined;
}

export function validateLeave(value: unknown, subjectWorker?: string): Decoded<Leave> {
  return validate(Leave, 'leave', value, subjectWorker);
}

export function decodeBeat(data: Uint8Array | string, subjectWorker?: string): Decoded<Beat> {
  const json = parseJson(data, MAX_BEAT_BYTES);
  return json.ok ? validateBeat(json.value, subjectWorker) : json;
}

export function decodeLeave(data: Uint8Array | string, subjectWorker?: string): Decoded<Leave> {
  const json = parseJson(data, MAX_BEAT_BYTES);
  return json.ok ? validateLeave(json.value, subjectWorker) : json;
}
