/**
 * Decoding of worker messages: size first, then JSON, then version, then
 * schema, then the subject check. Each failure names one reason of
 * PROTOCOL.md section 1 and a readable error (what, where, why).
 */
import type { z } from 'zod';
import { Beat, Leave, MAX_BEAT_BYTES, PROTOCOL_VERSION, RESERVED_META_KEYS } from './schemas.js';

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
  return validate(Beat, 'beat', value, subjectWorker);
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
