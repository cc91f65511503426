/**
 * The zod-free fast path for beats (decode.ts `fastBeat`) must never accept
 * what the Beat schema refuses, and must return exactly what the schema
 * returns when it accepts. Checked against `Beat.safeParse` on generated
 * inputs that mix valid values with the edges of every rule.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBeat, fastBeat, validateBeat } from '../../src/protocol/decode.js';
import { Beat, RESERVED_META_KEYS } from '../../src/protocol/schemas.js';

const anyOf = <T>(...arbs: fc.Arbitrary<T>[]) => fc.oneof(...arbs);

const weird = anyOf<unknown>(
  fc.constant(null),
  fc.constant(undefined),
  fc.boolean(),
  fc.string({ maxLength: 4 }),
  fc.double(),
  fc.constant(Number.POSITIVE_INFINITY),
  fc.constant(Number.NaN),
  fc.constant(-0),
  fc.constant(2 ** 53),
  fc.array(fc.nat(), { maxLength: 2 }),
  fc.constant({}),
);

const intIn = (min: number, max: number) => anyOf<unknown>(fc.integer({ min, max }), fc.constantFrom(min - 1, max + 1, min + 0.5), weird);

const metaKey = anyOf(fc.string({ maxLength: 6 }), fc.constantFrom(...RESERVED_META_KEYS, 'toString', '0', '10', 'a.b'));
const metaValue = anyOf<unknown>(fc.string({ maxLength: 8 }), fc.double(), fc.integer(), fc.boolean(), weird);
const meta = anyOf<unknown>(
  fc.dictionary(metaKey, metaValue, { maxKeys: 5 }),
  // Around the 2 KiB limit of the serialized meta, with multi-byte characters.
  fc.integer({ min: 2000, max: 2060 }).map((n) => ({ big: 'é'.repeat(Math.floor(n / 2) - 5) })),
  fc.integer({ min: 2030, max: 2050 }).map((n) => ({ big: 'x'.repeat(n - 10) })),
  weird,
);

const field = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 3 });

const beatLike = fc
  .record(
    {
      v: field(anyOf<unknown>(fc.constant(1), fc.constant(1), fc.constant(2), fc.constant('1'))),
      worker: field(anyOf<unknown>(fc.stringMatching(/^[A-Za-z0-9_-]{1,10}$/), fc.constantFrom('', 'a.b', 'x'.repeat(129), 'é'), weird)),
      instance: field(anyOf<unknown>(fc.string({ minLength: 1, maxLength: 10 }), fc.constantFrom('', 'i'.repeat(64), 'i'.repeat(65), '😀'.repeat(32), '😀'.repeat(33)), weird)),
      seq: field(intIn(0, Number.MAX_SAFE_INTEGER)),
      interval_ms: field(intIn(100, 600_000)),
      ts: field(intIn(-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)),
      status: field(anyOf<unknown>(fc.constantFrom('idle', 'busy', 'IDLE', ''), weird)),
      inflight: field(intIn(0, Number.MAX_SAFE_INTEGER)),
      load: field(anyOf<unknown>(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(-0.001, 1.001), weird)),
      meta: field(meta),
      extra: field(weird),
    },
    { requiredKeys: [] },
  )
  // Keys present with `undefined` only come from JS callers; drop most of them, keep a few.
  .chain((o) => fc.boolean().map((keepUndefined) => (keepUndefined ? o : Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)))));

const MAX = Number.MAX_SAFE_INTEGER;

/** Valid beats: every required field, each optional one maybe, values across their whole ranges. */
const validBeat = fc.record(
  {
    v: fc.constant(1),
    worker: fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/),
    instance: anyOf(fc.string({ minLength: 1, maxLength: 12 }), fc.constantFrom('i'.repeat(64), '😀'.repeat(32))),
    seq: anyOf(fc.integer({ min: 0, max: 1e6 }), fc.constantFrom(0, MAX)),
    interval_ms: anyOf(fc.integer({ min: 100, max: 600_000 }), fc.constantFrom(100, 600_000)),
    ts: anyOf(fc.integer(), fc.constantFrom(-MAX, MAX, 0)),
    status: fc.constantFrom('idle', 'busy'),
    inflight: anyOf(fc.nat(), fc.constantFrom(0, MAX)),
    load: anyOf(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(0, 1, -0)),
    meta: fc.dictionary(fc.string({ maxLength: 6 }).filter((k) => !RESERVED_META_KEYS.includes(k)), anyOf<string | number | boolean>(fc.string({ maxLength: 8 }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean()), { maxKeys: 4 }),
    unknown: weird,
  },
  { requiredKeys: ['v', 'worker', 'instance', 'seq', 'interval_ms'] },
);

/** A meta object whose serialized size is exactly `bytes` (ASCII or two-byte characters). */
const metaOfSize = (bytes: number, twoByte: boolean) =>
  ({ k: twoByte ? 'é'.repeat((bytes - 8) / 2) : 'x'.repeat(bytes - 8) });

/** One field set to a value at or just past the edge of its rule (or to the wrong type). */
const edge: fc.Arbitrary<[string, unknown]> = anyOf<[string, unknown]>(
  fc.tuple(fc.constant('v'), fc.constantFrom<unknown>(2, '1', 1.0000001, null, undefined)),
  fc.tuple(fc.constant('worker'), fc.constantFrom<unknown>('', 'a.b', 'x'.repeat(128), 'x'.repeat(129), 'é', ' w', 7, undefined)),
  fc.tuple(fc.constant('instance'), fc.constantFrom<unknown>('', 'i'.repeat(64), 'i'.repeat(65), '😀'.repeat(32), '😀'.repeat(32) + 'x', 1, null)),
  fc.tuple(fc.constantFrom('seq', 'inflight'), fc.constantFrom<unknown>(-1, 0, MAX, MAX + 1, 1.5, '1', null, Number.NaN)),
  fc.tuple(fc.constant('interval_ms'), fc.constantFrom<unknown>(99, 100, 600_000, 600_001, 1000.5, '1000', undefined)),
  fc.tuple(fc.constant('ts'), fc.constantFrom<unknown>(-MAX - 1, -MAX, MAX, MAX + 1, 0.5, Number.POSITIVE_INFINITY, '1', null, undefined)),
  fc.tuple(fc.constant('status'), fc.constantFrom<unknown>('idle', 'busy', 'IDLE', '', null, undefined, 0)),
  fc.tuple(fc.constant('load'), fc.constantFrom<unknown>(-0.0001, -0, 0, 1, 1.0001, Number.NaN, Number.POSITIVE_INFINITY, '0.5', null, undefined)),
  fc.tuple(fc.constant('meta'), anyOf<unknown>(
    fc.constantFrom(2046, 2047, 2048, 2049, 2050).chain((n) => fc.boolean().map((two) => metaOfSize(n % 2 === 0 ? n : two ? n + 1 : n, two && n % 2 === 0))),
    // A long key; control characters (6 bytes each once escaped); many long numbers: each near the limit.
    fc.integer({ min: 2040, max: 2056 }).map((n) => ({ ['k'.repeat(n - 6)]: 1 })),
    fc.integer({ min: 336, max: 344 }).map((n) => ({ k: '\u0001'.repeat(n) })),
    fc.integer({ min: 64, max: 72 }).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [(i + 36).toString(36), -1.2345678901234567e-300]))),
    fc.constantFrom<unknown>(null, [], 'x', { a: null }, { a: {} }, { a: [] }, { a: Number.POSITIVE_INFINITY }, { a: undefined }, Object.create(null), undefined),
    fc.constantFrom(...RESERVED_META_KEYS).map((k) => JSON.parse(`{"ok": 1, "${k}": 1}`) as unknown),
  )),
);

const perturbed = fc.tuple(validBeat, fc.option(edge, { freq: 4 })).map(([beat, e]) => {
  const o: Record<string, unknown> = { ...beat };
  if (e) o[e[0]] = e[1];
  return o;
});

describe('the fast path for beats', () => {
  it('never accepts what the Beat schema refuses, and returns what the schema returns', () => {
    fc.assert(
      fc.property(anyOf(beatLike, perturbed, perturbed), (input) => {
        const fast = fastBeat(input);
        if (fast === undefined) return;
        const hasReserved = typeof input.meta === 'object' && input.meta !== null && RESERVED_META_KEYS.some((k) => Object.hasOwn(input.meta as object, k));
        expect(hasReserved).toBe(false);
        const parsed = Beat.safeParse(input);
        expect(parsed.success).toBe(true);
        if (!parsed.success) return;
        expect(fast).toStrictEqual(parsed.data);
        expect(Object.keys(fast)).toEqual(Object.keys(parsed.data));
        if (fast.meta) expect(Object.keys(fast.meta)).toEqual(Object.keys(parsed.data.meta ?? {}));
      }),
      { numRuns: 3000 },
    );
  });

  it('gives the same answer as the schema path for beats that went through JSON', () => {
    fc.assert(
      fc.property(anyOf(beatLike, perturbed), fc.constantFrom(undefined, 'w-1'), (input, subject) => {
        const text = JSON.stringify(input);
        const viaDecode = decodeBeat(text, subject);
        const parsed = Beat.safeParse(JSON.parse(text));
        if (viaDecode.ok) {
          expect(parsed.success).toBe(true);
          expect(viaDecode.value).toStrictEqual(parsed.success ? parsed.data : undefined);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('takes the fast path for every valid beat without unusual keys', () => {
    fc.assert(
      fc.property(validBeat, (beat) => {
        const input = JSON.parse(JSON.stringify(beat)) as unknown;
        const parsed = Beat.safeParse(input);
        expect(parsed.success).toBe(true);
        expect(fastBeat(input)).toStrictEqual(parsed.data);
      }),
      { numRuns: 1000 },
    );
  });

  it('takes the fast path for an ordinary beat with every field', () => {
    const beat = {
      v: 1, worker: 'w-1', instance: 'abc', seq: 7, interval_ms: 1000, ts: 1_763_719_200_000,
      status: 'busy', inflight: 2, load: 0.5, meta: { zone: 'eu', gpu: true, slots: 8 },
    };
    expect(fastBeat(JSON.parse(JSON.stringify({ ...beat, unknown: 1 })))).toStrictEqual(beat);
    expect(validateBeat(beat, 'w-1')).toStrictEqual({ ok: true, value: beat });
  });

  it('leaves refusals and their wording to the schema path', () => {
    const base = { v: 1, worker: 'w-1', instance: 'i', seq: 0, interval_ms: 1000 };
    expect(validateBeat({ ...base, meta: JSON.parse('{"__proto__": 1}') })).toMatchObject({ ok: false, reason: 'invalid_schema', error: expect.stringContaining('meta.__proto__') });
    expect(validateBeat({ ...base, v: 2 })).toMatchObject({ ok: false, reason: 'unsupported_version' });
    expect(validateBeat({ ...base, load: 2 })).toMatchObject({ ok: false, reason: 'invalid_schema', error: expect.stringContaining('load') });
    expect(validateBeat(base, 'w-2')).toMatchObject({ ok: false, reason: 'worker_mismatch' });
  });
});
