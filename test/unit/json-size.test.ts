import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonByteLength } from '../../src/daemon/json-size.js';

describe('jsonByteLength', () => {
  it('equals the UTF-8 size of JSON.stringify for any parsed JSON value, unicode and lone surrogates included', () => {
    const text = fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)));
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.double(), fc.integer(), fc.boolean(), fc.constant(null), text,
        fc.array(tie('node'), { maxLength: 5 }),
        fc.array(fc.tuple(fc.oneof(text, fc.constantFrom('__proto__', 'constructor')), tie('node')), { maxLength: 5 }).map(
          (entries) => JSON.parse(`{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`) as unknown,
        ),
      ),
    })).node;
    fc.assert(
      fc.property(value, (v) => {
        const parsed = JSON.parse(JSON.stringify(v)) as unknown;
        expect(jsonByteLength(parsed)).toBe(Buffer.byteLength(JSON.stringify(parsed)));
      }),
      { numRuns: 2000 },
    );
  });

  it('measures values nested far deeper than JSON.stringify can go, and stops counting past the limit', () => {
    const depth = 30_000;
    const deep = JSON.parse('['.repeat(depth) + ']'.repeat(depth)) as unknown;
    expect(() => JSON.stringify(deep)).toThrow(RangeError);
    expect(jsonByteLength(deep)).toBe(2 * depth);
    const size = jsonByteLength(deep, 8192);
    expect(size).toBeGreaterThan(8192);
    expect(size).toBeLessThan(8192 + 10);
  });
});
