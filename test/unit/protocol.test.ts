import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeBeat, decodeLeave, jsonSchemas, workerFromSubject, beatSubject, wildcard } from '../../src/protocol/index.js';

const ok = { v: 1, worker: 'w-1', instance: 'i', seq: 0, interval_ms: 1000 };
const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));

describe('wire schemas', () => {
  it('accepts a minimal beat and ignores unknown fields', () => {
    const r = decodeBeat(enc({ ...ok, extra: { deep: true } }), 'w-1');
    expect(r).toEqual({ ok: true, value: ok });
  });

  it('checks the size before parsing', () => {
    const r = decodeBeat('x'.repeat(8 * 1024 + 1));
    expect(r).toMatchObject({ ok: false, reason: 'too_large' });
  });

  it('names invalid JSON and invalid UTF-8 as invalid_json', () => {
    expect(decodeBeat('{"v":1,')).toMatchObject({ ok: false, reason: 'invalid_json' });
    expect(decodeBeat(new Uint8Array([0x7b, 0xff, 0x7d]))).toMatchObject({ ok: false, reason: 'invalid_json', error: expect.stringContaining('UTF-8') });
  });

  it('rejects any other version as unsupported_version', () => {
    expect(decodeBeat(enc({ ...ok, v: 2 }))).toMatchObject({ ok: false, reason: 'unsupported_version' });
    expect(decodeBeat(enc({ ...ok, v: '1' }))).toMatchObject({ ok: false, reason: 'unsupported_version' });
  });

  it('names the field path of a schema error', () => {
    const r = decodeBeat(enc({ ...ok, interval_ms: 50, meta: { a: { nested: 1 } } }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.reason).toBe('invalid_schema');
    expect(r.error).toContain('interval_ms');
    expect(r.error).toContain('meta.a');
  });

  it('rejects a body whose worker disagrees with the subject as worker_mismatch', () => {
    expect(decodeBeat(enc(ok), 'other')).toMatchObject({ ok: false, reason: 'worker_mismatch' });
  });

  it('rejects non-objects, bad worker ids, oversized meta and reserved meta keys', () => {
    for (const bad of [[], 'beat', null, 42]) expect(decodeBeat(enc(bad))).toMatchObject({ reason: 'invalid_schema' });
    expect(decodeBeat(enc({ ...ok, worker: 'a.b' }))).toMatchObject({ reason: 'invalid_schema' });
    expect(decodeBeat(enc({ ...ok, worker: 'x'.repeat(129) }))).toMatchObject({ reason: 'invalid_schema' });
    expect(decodeBeat(enc({ ...ok, meta: { big: 'z'.repeat(2100) } }))).toMatchObject({ reason: 'invalid_schema' });
    expect(decodeBeat('{"v":1,"worker":"w","instance":"i","seq":1,"interval_ms":1000,"meta":{"__proto__":"x"}}')).toMatchObject({
      reason: 'invalid_schema',
    });
  });

  it('validates a leave with its phase and reason', () => {
    expect(decodeLeave(enc({ ...ok, phase: 'draining', reason: 'SIGTERM', drain_timeout_ms: 5000 }), 'w-1').ok).toBe(true);
    expect(decodeLeave(enc({ ...ok, phase: 'gone' }))).toMatchObject({ reason: 'invalid_schema', error: expect.stringContaining('phase') });
    expect(decodeLeave(enc({ ...ok, phase: 'stopped', reason: 'r'.repeat(257) }))).toMatchObject({ reason: 'invalid_schema' });
  });
});

describe('subjects', () => {
  it('takes the worker from the last token only', () => {
    expect(beatSubject('hb', 'w1')).toBe('hb.beat.w1');
    expect(wildcard('hb', 'leave')).toBe('hb.leave.*');
    expect(workerFromSubject('hb.beat.w1', 'hb', 'beat')).toBe('w1');
    expect(workerFromSubject('hb.beat.', 'hb', 'beat')).toBeUndefined();
    expect(workerFromSubject('hb.beat.a.b', 'hb', 'beat')).toBeUndefined();
    expect(workerFromSubject('hbx.beat.a', 'hb', 'beat')).toBeUndefined();
  });
});

describe('JSON Schema export', () => {
  it('matches the committed schemas/*.json (run `npm run schemas` after changing a zod schema)', () => {
    for (const [name, schema] of Object.entries(jsonSchemas())) {
      const file = path.resolve(import.meta.dirname, '../../schemas', `${name}.json`);
      const committed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
      expect(committed, `schemas/${name}.json drifted from the zod schema`).toEqual(JSON.parse(JSON.stringify(schema)));
    }
  });
});
