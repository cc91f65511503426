/**
 * Hostile input (docs/PROTOCOL.md 1, 2.8, 4): 100,000 generated NATS messages and
 * 10,000 generated HTTP bodies (fast-check, a fresh seed each run, printed;
 * set HBAGG_FUZZ_SEED to replay one), plus the files of
 * test/fixtures/hostile-corpus. Random bytes, deep and huge JSON,
 * prototype-pollution keys, unicode edge cases, floods of new ids past
 * max_workers, subject tricks, forged stale and suppressed beats, garbage
 * Leaves. The promise: no crash, valid workers unaffected (every one of their
 * beats counted), every rejection counted by its reason.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonByteLength } from '../../src/daemon/json-size.js';
import { decodeBeat, decodeLeave, REJECT_REASONS, validateBeat, type RejectReason } from '../../src/protocol/decode.js';
import { MAX_BEAT_BYTES, type Ping } from '../../src/protocol/schemas.js';
import { workerFromSubject } from '../../src/protocol/subjects.js';
import {
  natsClient,
  sleep,
  startNatsServer,
  startPlatformStub,
  startTestDaemon,
  waitFor,
  type NatsServerHandle,
  type PlatformStub,
  type TestDaemon,
} from '../../testing/index.js';

const SEED = Number(process.env.HBAGG_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const NATS_MESSAGES = 100_000;
const CHUNK = 5_000;
const HTTP_BODIES = 10_000;
const MAX_WORKERS = 1000;
const OK_WORKERS = 20;
const CORPUS = path.resolve(import.meta.dirname, '../fixtures/hostile-corpus');

type Outcome = RejectReason | 'decoded';
type Counts = Partial<Record<Outcome, number>>;
const add = (c: Counts, k: Outcome, n = 1) => void (c[k] = (c[k] ?? 0) + n);

// ---- arbitraries -----------------------------------------------------------

const fuzzId = fc.stringMatching(/^[a-z0-9]{1,6}$/).map((s) => `fz-${s}`);
const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const nasty = fc.constantFrom(
  '', '\u0000', '\u202e', '\u200b', '\ufeff', '\uffff', '\u2028', '__proto__', 'constructor', 'prototype',
  'toString', 'hasOwnProperty', '*', '>', '.', 'a'.repeat(129), '\u{1F600}', 'e\u0301', '../../etc/passwd',
);
const weird = fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ maxLength: 40 }), loneSurrogate, nasty, fuzzId);
const scalar = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), weird, fc.constant(Number.MAX_SAFE_INTEGER + 2));
const anyJson = fc.oneof(scalar, fc.jsonValue({ maxDepth: 3 }));
const protoKey = fc.constantFrom('__proto__', 'constructor', 'prototype');
type Entry = [string, unknown];

/** A field that is usually right, sometimes anything, sometimes missing. */
function field(name: string, good: fc.Arbitrary<unknown>): fc.Arbitrary<Entry | undefined> {
  return fc.option(fc.tuple(fc.constant(name), fc.oneof({ weight: 4, arbitrary: good }, { weight: 1, arbitrary: anyJson })), {
    nil: undefined,
    freq: 8,
  });
}

/** Serialized by hand so that `__proto__` stays an own key of the JSON text, and keys may repeat. */
function objectText(entries: readonly (Entry | undefined)[]): string {
  return `{${entries
    .filter((e): e is Entry => e !== undefined)
    .map(([k, v]) => `${JSON.stringify(k)}:${v === undefined ? 'null' : v instanceof RawJson ? v.text : JSON.stringify(v)}`)
    .join(',')}}`;
}

class RawJson {
  constructor(readonly text: string) {}
}

const metaText = fc
  .array(fc.tuple(fc.oneof({ weight: 4, arbitrary: fc.string({ maxLength: 10 }) }, { weight: 1, arbitrary: protoKey }), fc.oneof(fc.string({ maxLength: 30 }), fc.integer(), fc.boolean(), anyJson)), { maxLength: 6 })
  .map((entries) => new RawJson(objectText(entries)));

/** A beat-shaped object, each field possibly wrong, plus extra keys (pollution attempts among them). */
const beatLike = (worker: fc.Arbitrary<unknown>) =>
  fc
    .tuple(
      field('v', fc.constant(1)),
      field('worker', worker),
      field('instance', fc.oneof(fc.string({ minLength: 1, maxLength: 64 }), weird)),
      field('seq', fc.oneof(fc.nat(), fc.integer(), fc.double())),
      field('interval_ms', fc.oneof(fc.integer({ min: 100, max: 600_000 }), fc.integer())),
      field('status', fc.constantFrom('idle', 'busy', 'dead')),
      field('inflight', fc.integer({ min: -2, max: 100 })),
      field('load', fc.double({ min: -0.5, max: 1.5, noNaN: true })),
      field('meta', metaText),
      fc.array(fc.tuple(fc.oneof(protoKey, fc.constantFrom('v', 'worker', 'seq'), fc.string({ maxLength: 8 })), anyJson), { maxLength: 3 }),
    )
    .map(([...parts]) => {
      const extra = parts.pop() as Entry[];
      const fields = parts as (Entry | undefined)[];
      const w = fields[1]?.[1];
      return { worker: typeof w === 'string' ? w : undefined, text: objectText([...fields, ...extra]) };
    });

const leaveLike = fc
  .tuple(
    field('v', fc.constant(1)),
    field('worker', fuzzId),
    field('instance', fc.string({ minLength: 1, maxLength: 10 })),
    field('seq', fc.nat()),
    field('phase', fc.constantFrom('draining', 'stopped', 'gone')),
    field('reason', fc.oneof(fc.string({ maxLength: 300 }), weird)),
    field('drain_timeout_ms', fc.integer({ min: -1, max: 100_000 })),
  )
  .map((fields) => ({ worker: typeof fields[1]?.[1] === 'string' ? (fields[1][1] as string) : undefined, text: objectText(fields) }));

const deepText = fc.tuple(fc.integer({ min: 50, max: 4000 }), fc.constantFrom('array', 'object', 'meta', 'unbalanced')).map(([depth, kind]) => {
  if (kind === 'array') return '['.repeat(depth) + ']'.repeat(depth);
  if (kind === 'object') return '{"a":'.repeat(Math.min(depth, 1500)) + '1' + '}'.repeat(Math.min(depth, 1500));
  if (kind === 'meta') {
    const d = Math.min(depth, 1400);
    return `{"v":1,"worker":"fz-deep","instance":"i","seq":1,"interval_ms":1000,"meta":${'{"a":'.repeat(d)}1${'}'.repeat(d)}}`;
  }
  return '['.repeat(depth);
});

const hugeText = fc.tuple(fc.integer({ min: 8193, max: 64 * 1024 }), fc.boolean()).map(([size, valid]) =>
  valid ? `{"v":1,"worker":"fz-huge","instance":"i","seq":1,"interval_ms":1000,"pad":"${'x'.repeat(size)}"}` : 'x'.repeat(size),
);

/** A subject token nats.js will publish (no whitespace, no dots, no control characters). */
const publishable = (t: string) => /^[^\s.\u0000-\u001f\u007f]+$/.test(t);

// ---- the suite ---------------------------------------------------------------

describe(`hostile input (seed ${SEED})`, () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let stub: PlatformStub;
  let d: TestDaemon;
  let p: string;
  /** Beats of the valid workers counted in accepted pings (tallied as they arrive; the stub's log is cleared). */
  const okCounted = new Map<string, number>();
  const okPublished = new Map<string, number>();
  const okSeq = new Map<string, number>();
  let okLostOrRestarted = 0;
  let okRunning = true;
  /** Paused while single messages are checked one by one. */
  let okPaused = false;
  let okLoop: Promise<void> = Promise.resolve();

  const counts = async (): Promise<{ accepted: number; rejected: Counts; leaves: number }> => {
    const s = await d.daemon.snapshot();
    const rejected: Counts = {};
    for (const [reason, n] of Object.entries(s.beatsRejected)) add(rejected, reason as RejectReason, n);
    const accepted = s.beatsAccepted;
    const leaves = Object.values(s.leaves).reduce((n, byPhase) => n + Object.values(byPhase).reduce((a, b) => a + b, 0), 0);
    return { accepted, rejected, leaves };
  };
  const processed = (c: { accepted: number; rejected: Counts }) => c.accepted + Object.values(c.rejected).reduce((a, b) => a + (b ?? 0), 0);
  const totalOkPublished = () => [...okPublished.values()].reduce((a, b) => a + b, 0);

  beforeAll(async () => {
    console.info(`hostile input: fast-check seed ${SEED} (replay with HBAGG_FUZZ_SEED=${SEED})`);
    nats = await startNatsServer();
    nc = await natsClient(nats.url);
    stub = await startPlatformStub();
    stub.respondWith((req) => {
      for (const w of (req.body as Ping).workers ?? []) {
        if (!w.worker.startsWith('ok-')) continue;
        okCounted.set(w.worker, (okCounted.get(w.worker) ?? 0) + w.beats);
        if (w.state !== 'active' || w.instance !== 'ok') okLostOrRestarted++;
      }
      return { status: 200, body: {} };
    });
    d = await startTestDaemon({
      natsUrl: nats.url,
      platformUrl: stub.url,
      env: { HBAGG_MAX_WORKERS: String(MAX_WORKERS), HBAGG_LOG_LEVEL: 'warn' },
    });
    p = d.prefix;
    // The valid workers: beat every 100 ms throughout, over NATS.
    const okBeat = (w: string) => {
      const seq = (okSeq.get(w) ?? 0) + 1;
      okSeq.set(w, seq);
      okPublished.set(w, (okPublished.get(w) ?? 0) + 1);
      nc.publish(`${p}.beat.${w}`, JSON.stringify({ v: 1, worker: w, instance: 'ok', seq, interval_ms: 1000, meta: { role: 'valid' } }));
    };
    for (let i = 0; i < OK_WORKERS; i++) okBeat(`ok-${i}`);
    await nc.flush();
    await waitFor(async () => (await d.daemon.snapshot()).tracked === OK_WORKERS, { message: 'valid workers registered' });
    okLoop = (async () => {
      while (okRunning) {
        await sleep(100);
        if (!okPaused) for (let i = 0; i < OK_WORKERS; i++) okBeat(`ok-${i}`);
      }
    })();
  });

  afterAll(async () => {
    okRunning = false;
    await okLoop;
    await d?.stop();
    await nc?.close();
    await stub?.close();
    await nats?.stop();
  });

  it('gives every corpus file the outcome its directory names, over NATS and over HTTP', async () => {
    const dirs = readdirSync(CORPUS, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    const wrong: string[] = [];
    let files = 0;
    okPaused = true;
    await sleep(150);
    await nc.flush();
    const quiet = totalOkPublished();
    await waitFor(async () => (await counts()).accepted >= quiet, { message: 'valid beats settled' });
    for (const dir of dirs) {
      for (const name of readdirSync(path.join(CORPUS, dir))) {
        files++;
        const data = readFileSync(path.join(CORPUS, dir, name));
        const worker = dir === 'accepted' ? (JSON.parse(data.toString('utf8').replace(/^\uFEFF/, '')) as { worker: string }).worker : 'corpus-w';
        const before = await counts();
        nc.publish(`${p}.beat.${worker}`, new Uint8Array(data));
        await nc.flush();
        const after = await waitFor(async () => {
          const c = await counts();
          return processed(c) > processed(before) && c;
        });
        const got = after.accepted > before.accepted
          ? 'accepted'
          : REJECT_REASONS.find((r) => (after.rejected[r] ?? 0) > (before.rejected[r] ?? 0)) ?? 'nothing';
        if (got !== dir) wrong.push(`nats ${dir}/${name}: ${got}`);
        if (dir === 'accepted' && !d.daemon.workers().some((e) => e.worker === worker)) wrong.push(`nats ${dir}/${name}: not tracked`);

        // The same bytes as an HTTP body (no subject there: judged by the reference).
        const want = expectHttp(data, 'application/json');
        const hb = await counts();
        const res = await fetch(`${d.base}/v1/beat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: data });
        await res.text();
        const ha = await counts();
        if (res.status !== want.status) wrong.push(`http ${dir}/${name}: status ${res.status}, expected ${want.status}`);
        for (const r of REJECT_REASONS.filter((x) => x !== 'stale' && x !== 'capacity')) {
          const dr = (ha.rejected[r] ?? 0) - (hb.rejected[r] ?? 0);
          if (dr !== (want.counts[r] ?? 0)) wrong.push(`http ${dir}/${name}: ${r} +${dr}, expected +${want.counts[r] ?? 0}`);
        }
      }
    }
    okPaused = false;
    expect(wrong).toEqual([]);
    expect(files).toBeGreaterThan(80);
    expect(Object.keys(Object.prototype)).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // Workers named __proto__ and constructor are ordinary workers.
    expect(d.daemon.workers().filter((e) => ['__proto__', 'constructor', 'prototype'].includes(e.worker))).toHaveLength(3);
  }, 60_000);

  it(`survives ${NATS_MESSAGES.toLocaleString('en')} hostile NATS messages with every rejection counted by reason`, async () => {
    const before = await counts();
    const okBefore = totalOkPublished();
    // Workers whose instance left: their later beats must be suppressed.
    const gone = Array.from({ length: 10 }, (_, i) => `gone-${i}`);
    for (const w of gone) nc.publish(`${p}.beat.${w}`, JSON.stringify({ v: 1, worker: w, instance: 'g', seq: 1, interval_ms: 1000 }));
    for (const w of gone) {
      const reply = await nc.request(`${p}.leave.${w}`, JSON.stringify({ v: 1, worker: w, instance: 'g', seq: 2, phase: 'stopped' }), { timeout: 3000 });
      expect(reply.json<{ ok: boolean }>().ok).toBe(true);
    }
    const goneBeats = gone.length;
    const goneLeaves = gone.length;

    const expected: Counts = {};
    let beatsDelivered = 0;
    let leavesDelivered = 0;
    let undelivered = 0;
    let crafted = { stale: 0, suppressed: 0, flood: 0 };
    let floodN = 0;
    const started = performance.now();

    const send = (subject: string, data: string | Uint8Array) => {
      const tokens = subject.split('.');
      // What NATS delivers to the daemon's `<p>.beat.*` and `<p>.leave.*`: exactly three tokens, none empty.
      const delivered = tokens.length === 3 && tokens[0] === p && (tokens[1] === 'beat' || tokens[1] === 'leave') && tokens[2] !== '';
      if (!delivered) undelivered++;
      else if (tokens[1] === 'beat') {
        beatsDelivered++;
        const r = decodeBeat(data, workerFromSubject(subject, p, 'beat'));
        add(expected, r.ok ? 'decoded' : r.reason);
      } else if (tokens[1] === 'leave') {
        leavesDelivered++;
        decodeLeave(data, workerFromSubject(subject, p, 'leave')); // must not throw either
      }
      nc.publish(subject, data);
    };
    const beatSubjectFor = (worker: string | undefined, alt: string) =>
      `${p}.beat.${worker !== undefined && publishable(worker) && !worker.startsWith('ok-') ? worker : alt}`;

    for (let chunk = 0; chunk < NATS_MESSAGES / CHUNK; chunk++) {
      const seed = SEED + chunk;
      const n = (count: number) => ({ numRuns: count, seed });
      for (const bytes of fc.sample(fc.uint8Array({ maxLength: 300 }), n(750))) send(`${p}.beat.fz-bytes`, bytes);
      for (const v of fc.sample(anyJson, n(750))) send(`${p}.beat.fz-json`, JSON.stringify(v) ?? 'undefined');
      const tokens = fc.sample(fc.oneof(fuzzId, fc.constantFrom('*', '>', 'w\u00f6rker', 'ok-0', '__proto__')), n(2000));
      fc.sample(beatLike(fc.oneof({ weight: 3, arbitrary: fuzzId }, { weight: 1, arbitrary: weird })), n(2000)).forEach((b, i) => {
        send(beatSubjectFor(i % 4 === 0 ? undefined : b.worker, tokens[i]!), b.text);
      });
      // Unicode in the fields that name things, and raw invalid UTF-8 spliced into valid beats.
      fc.sample(fc.tuple(weird, weird, fc.integer({ min: 0, max: 60 }), fc.constantFrom(0xff, 0xc0, 0xed, 0x80, 0x00)), n(400)).forEach(([w, inst, at, byte], i) => {
        const text = JSON.stringify({ v: 1, worker: i % 2 ? w : 'fz-uni', instance: i % 3 ? inst : 'i', seq: 1, interval_ms: 1000, meta: { w } });
        if (i % 5 === 0) {
          const buf = Buffer.from(text);
          buf[Math.min(at, buf.length - 1)] = byte;
          send(`${p}.beat.fz-uni`, buf);
        } else send(beatSubjectFor(i % 2 ? w : 'fz-uni', 'fz-uni'), text);
      });
      for (const text of fc.sample(deepText, n(100))) send(`${p}.beat.fz-deep`, text);
      for (const text of fc.sample(hugeText, n(50))) send(`${p}.beat.fz-huge`, text);
      // A flood of new ids: max_workers is 1000.
      for (let i = 0; i < 250; i++, floodN++) {
        const w = `flood-${floodN}`;
        send(`${p}.beat.${w}`, JSON.stringify({ v: 1, worker: w, instance: 'f', seq: 1, interval_ms: 600_000 }));
        crafted.flood++;
      }
      // Forged beats of valid workers with an old seq (stale), and of instances that left (suppressed).
      for (let i = 0; i < 100; i++) {
        const w = `ok-${i % OK_WORKERS}`;
        send(`${p}.beat.${w}`, JSON.stringify({ v: 1, worker: w, instance: 'ok', seq: 0, interval_ms: 1000 }));
        crafted.stale++;
      }
      for (let i = 0; i < 50; i++) {
        const w = gone[i % gone.length]!;
        send(`${p}.beat.${w}`, JSON.stringify({ v: 1, worker: w, instance: 'g', seq: 100 + chunk * 50 + i, interval_ms: 1000 }));
        crafted.suppressed++;
      }
      // The body names a valid worker, the subject another: never applied to either.
      for (let i = 0; i < 150; i++) {
        const w = `ok-${i % OK_WORKERS}`;
        send(`${p}.beat.fz-mm${i % 7}`, JSON.stringify({ v: 1, worker: w, instance: 'ok', seq: 1e9 + i, interval_ms: 1000 }));
      }
      // Subject tricks: extra tokens, empty tokens, wildcards, unicode tokens.
      const trick = ['beat.a.b', 'beat', 'beatx.y', 'beat..x', 'beat.', 'beat.*', 'beat.>', 'beat.w\u00f6rker', 'leave.a.b', 'beat.ok-1.x'];
      for (let i = 0; i < 150; i++) {
        const suffix = trick[i % trick.length]!;
        const last = suffix.split('.').at(-1) || 'a';
        send(`${p}.${suffix}`, JSON.stringify({ v: 1, worker: i % 2 ? last : 'a', instance: 'x', seq: 1, interval_ms: 1000 }));
      }
      // Garbage and half-valid Leaves (fuzz ids only).
      for (const l of fc.sample(leaveLike, n(250))) send(`${p}.leave.${l.worker !== undefined && publishable(l.worker) ? l.worker : 'fz-leave'}`, l.text);

      await nc.flush();
      const target = before.leaves + goneLeaves + leavesDelivered;
      await waitFor(
        async () => {
          const c = await counts();
          return processed(c) - processed(before) === beatsDelivered + goneBeats + totalOkPublished() - okBefore && c.leaves >= target && c;
        },
        { timeoutMs: 20_000, message: `chunk ${chunk}: every delivered message processed` },
      );
      expect((await d.daemon.snapshot()).tracked).toBeLessThanOrEqual(MAX_WORKERS);
    }
    const seconds = (performance.now() - started) / 1000;
    const after = await counts();
    const delta = (r: RejectReason) => (after.rejected[r] ?? 0) - (before.rejected[r] ?? 0);

    // Every decode-level rejection is counted under its reason, exactly.
    for (const r of ['invalid_json', 'invalid_schema', 'unsupported_version', 'worker_mismatch', 'too_large'] as const) {
      expect({ reason: r, count: delta(r) }).toEqual({ reason: r, count: expected[r] ?? 0 });
    }
    // What decoded went to the registry: accepted, or rejected by state.
    const okDuring = totalOkPublished() - okBefore;
    const byState = delta('stale') + delta('suppressed') + delta('capacity');
    expect(after.accepted - before.accepted + byState).toBe((expected.decoded ?? 0) + okDuring + goneBeats);
    expect(delta('stale')).toBeGreaterThanOrEqual(crafted.stale);
    expect(delta('suppressed')).toBeGreaterThanOrEqual(crafted.suppressed);
    expect(delta('capacity')).toBeGreaterThan(0);
    expect(after.leaves - before.leaves).toBe(leavesDelivered + goneLeaves);
    expect(d.daemon.state).toBe('running');
    expect((await d.daemon.snapshot()).nats.ready).toBe(true);
    expect((await fetch(`${d.base}/livez`)).status).toBe(200);
    expect(Object.keys(Object.prototype)).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const sent = beatsDelivered + leavesDelivered + undelivered;
    console.info(
      `NATS: ${sent} hostile messages in ${seconds.toFixed(1)} s (${Math.round(sent / seconds)}/s; ${undelivered} on subjects the daemon does not hear), ` +
        `rejected by reason ${JSON.stringify(Object.fromEntries(REJECT_REASONS.map((r) => [r, delta(r)])))}, ` +
        `decoded ${expected.decoded ?? 0} (flood ${crafted.flood}, capacity rejections ${delta('capacity')}), leaves ${leavesDelivered}; ` +
        `tracked workers ${(await d.daemon.snapshot()).tracked}/${MAX_WORKERS}`,
    );
    stub.clear();
  }, 120_000);

  /** What POST /v1/beat must do with `body`: the status and the counts by reason (a reference, from the contract). */
  function expectHttp(body: Buffer, contentType: string): { status: number; counts: Counts; items: number } {
    const counts: Counts = {};
    if (contentType !== 'application/json') return { status: 415, counts, items: 0 };
    if (body.length > 65_536) return { status: 413, counts: { too_large: 1 }, items: 0 };
    let value: unknown;
    try {
      const text = new TextDecoder('utf-8', { fatal: true }).decode(body);
      if (text.trim() === '') throw new Error('empty');
      value = JSON.parse(text);
    } catch {
      return { status: 400, counts: { invalid_json: 1 }, items: 0 };
    }
    if (Array.isArray(value)) {
      if (value.length === 0) return { status: 400, counts, items: 0 };
      if (value.length > 1000) return { status: 413, counts, items: 0 };
    } else if (typeof value !== 'object' || value === null) {
      return { status: 400, counts: { invalid_schema: 1 }, items: 0 };
    }
    const items = Array.isArray(value) ? value : [value];
    for (const item of items) {
      if (jsonByteLength(item, MAX_BEAT_BYTES) > MAX_BEAT_BYTES) {
        add(counts, 'too_large'); // the 8 KiB limit of a Beat holds per item
        continue;
      }
      const r = validateBeat(item);
      add(counts, r.ok ? 'decoded' : r.reason);
    }
    return { status: 202, counts, items: items.length };
  }

  it(`survives ${HTTP_BODIES.toLocaleString('en')} hostile HTTP bodies on POST /v1/beat, each answered and counted`, async () => {
    const before = await counts();
    const okBefore = totalOkPublished();
    const bodies: { body: Buffer; type: string }[] = [];
    const n = (count: number, k: number) => ({ numRuns: count, seed: SEED + 1000 + k });
    const json = 'application/json';
    for (const b of fc.sample(fc.uint8Array({ maxLength: 400 }), n(1800, 1))) bodies.push({ body: Buffer.from(b), type: json });
    for (const v of fc.sample(anyJson, n(1500, 2))) bodies.push({ body: Buffer.from(JSON.stringify(v) ?? ''), type: json });
    for (const b of fc.sample(beatLike(fc.oneof(fuzzId, weird)), n(3200, 3))) bodies.push({ body: Buffer.from(b.text), type: json });
    for (const arr of fc.sample(fc.array(beatLike(fuzzId), { minLength: 1, maxLength: 30 }), n(1500, 4))) {
      bodies.push({ body: Buffer.from(`[${arr.map((b) => b.text).join(',')}]`), type: json });
    }
    for (const t of fc.sample(fc.integer({ min: 100, max: 30_000 }), n(400, 5))) {
      bodies.push({ body: Buffer.from(t % 2 ? '['.repeat(t) + ']'.repeat(t) : '{"a":'.repeat(t) + '1' + '}'.repeat(t)), type: json });
    }
    for (const size of fc.sample(fc.integer({ min: 65_537, max: 200_000 }), n(150, 6))) bodies.push({ body: Buffer.alloc(size, 0x20), type: json });
    for (let i = 0; i < 100; i++) bodies.push({ body: Buffer.from(i % 2 ? '[]' : `[${Array(1001).fill('1').join(',')}]`), type: json });
    for (let i = 0; i < 950; i++) {
      // Pollution attempts at the top level and in meta, on valid-looking beats.
      const w = `fz-http-${i % 300}`;
      const proto = i % 3 === 0 ? '"__proto__":{"polluted":"yes"}' : i % 3 === 1 ? '"constructor":{"prototype":{"polluted":"yes"}}' : '"meta":{"__proto__":{"polluted":"yes"}}';
      bodies.push({ body: Buffer.from(`{"v":1,"worker":"${w}","instance":"h","seq":${i},"interval_ms":1000,${proto}}`), type: json });
    }
    for (let i = 0; i < 400; i++) bodies.push({ body: Buffer.from('{"v":1}'), type: i % 2 ? 'text/plain' : 'application/x-www-form-urlencoded' });
    expect(bodies.length).toBe(HTTP_BODIES);

    const expected: Counts = {};
    const statusMismatch: string[] = [];
    let inconsistent = 0;
    const started = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < bodies.length) {
        const { body, type } = bodies[next++]!;
        const want = expectHttp(body, type);
        for (const [k, v] of Object.entries(want.counts)) add(expected, k as Outcome, v);
        const res = await fetch(`${d.base}/v1/beat`, { method: 'POST', headers: { 'content-type': type }, body });
        const text = await res.text();
        if (res.status !== want.status && statusMismatch.length < 5) statusMismatch.push(`${want.status} -> ${res.status}: ${body.subarray(0, 80).toString()}`);
        if (res.status === 202) {
          const r = JSON.parse(text) as { accepted: number; rejected: { index: number; reason: string }[] };
          if (r.accepted + r.rejected.length !== want.items) inconsistent++;
          if (!r.rejected.every((x) => (REJECT_REASONS as readonly string[]).includes(x.reason))) inconsistent++;
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    const seconds = (performance.now() - started) / 1000;
    expect(statusMismatch).toEqual([]);
    expect(inconsistent).toBe(0);

    const after = await counts();
    const delta = (r: RejectReason) => (after.rejected[r] ?? 0) - (before.rejected[r] ?? 0);
    for (const r of ['invalid_json', 'invalid_schema', 'unsupported_version', 'worker_mismatch', 'too_large'] as const) {
      expect({ reason: r, count: delta(r) }).toEqual({ reason: r, count: expected[r] ?? 0 });
    }
    await waitFor(async () => {
      const c = await counts();
      const byState = ['stale', 'suppressed', 'capacity'].reduce((a, r) => a + (c.rejected[r as RejectReason] ?? 0) - (before.rejected[r as RejectReason] ?? 0), 0);
      return c.accepted - before.accepted + byState === (expected.decoded ?? 0) + totalOkPublished() - okBefore;
    }, { message: 'every decoded HTTP beat accepted or rejected by state' });
    expect(Object.keys(Object.prototype)).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await fetch(`${d.base}/livez`)).status).toBe(200);
    console.info(
      `HTTP: ${bodies.length} bodies in ${seconds.toFixed(1)} s (${Math.round(bodies.length / seconds)}/s), ` +
        `rejected by reason ${JSON.stringify(Object.fromEntries(REJECT_REASONS.map((r) => [r, delta(r)])))}, decoded items ${expected.decoded ?? 0}`,
    );
    stub.clear();
  }, 120_000);

  it('left the valid workers untouched: every one of their beats counted, never lost, never restarted', async () => {
    okRunning = false;
    await okLoop;
    await nc.flush();
    await waitFor(() => [...okSeq].every(([w, s]) => d.daemon.workers().find((e) => e.worker === w)?.seq === s), {
      message: 'last valid beats applied',
    });
    await d.stop();
    const wrong = [...okPublished].filter(([w, n]) => okCounted.get(w) !== n);
    expect(wrong).toEqual([]);
    expect(okLostOrRestarted).toBe(0);
    console.info(`valid workers: ${OK_WORKERS}, beats published ${totalOkPublished()}, counted ${[...okCounted.values()].reduce((a, b) => a + b, 0)}`);
  }, 30_000);
});
