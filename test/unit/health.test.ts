import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { describeJsonError } from '../../src/daemon/http/body.js';
import { jsonErrorOffset } from '../../src/daemon/http/json-position.js';
import { Health, type HealthCheck } from '../../src/daemon/http/health.js';
import { judgePlatform, stateDirCheck } from '../../src/daemon/http/health-checks.js';

/** A check that counts its runs and answers what `answer` says. */
function fake(name: string, answer: (signal: AbortSignal) => Promise<void> | void, timeoutMs = 1000) {
  const calls: AbortSignal[] = [];
  const check: HealthCheck = {
    name,
    timeoutMs,
    run: (signal) => {
      calls.push(signal);
      return answer(signal);
    },
  };
  return { check, calls };
}

const never = () => new Promise<void>(() => undefined);

describe('Health', () => {
  it('gives 1,000 concurrent callers one shared round of checks', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const a = fake('a', () => gate);
    const b = fake('b', () => undefined);
    const health = new Health([a.check, b.check], { cacheMs: 1000 });
    const reports = Array.from({ length: 1000 }, () => health.report());
    release();
    const all = await Promise.all(reports);
    expect(a.calls).toHaveLength(1);
    expect(b.calls).toHaveLength(1);
    expect(health.rounds).toBe(1);
    expect(new Set(all).size).toBe(1);
    expect(all[0]!.status).toBe('ok');
  });

  it('reuses a finished round for cacheMs, then runs a new one', async () => {
    let now = 0;
    const a = fake('a', () => undefined);
    const health = new Health([a.check], { cacheMs: 1000, now: () => now });
    const first = await health.report();
    now = 999;
    expect(await health.report()).toBe(first);
    expect(a.calls).toHaveLength(1);
    now = 1000;
    const second = await health.report();
    expect(second).not.toBe(first);
    expect(a.calls).toHaveLength(2);
    expect(health.rounds).toBe(2);
  });

  it('reports a hung check as timeout after its own timeout while the other checks report ok', async () => {
    const hung = fake('hung', never, 40);
    const fine = fake('fine', () => undefined, 1000);
    const health = new Health([hung.check, fine.check], { cacheMs: 0 });
    const report = await health.report();
    expect(report.status).toBe('fail');
    expect(report.checks.hung).toMatchObject({ status: 'timeout', error: 'no answer within 40 ms' });
    expect(report.checks.hung!.duration_ms).toBeGreaterThanOrEqual(39);
    expect(report.checks.fine).toMatchObject({ status: 'ok' });
  });

  it('aborts the signal of a check that passes its timeout', async () => {
    const hung = fake('hung', never, 20);
    await new Health([hung.check], { cacheMs: 0 }).report();
    expect(hung.calls[0]!.aborted).toBe(true);
  });

  it('does not start a hung check again while its previous run is still pending', async () => {
    const hung = fake('hung', never, 20);
    const health = new Health([hung.check], { cacheMs: 0 });
    await health.report();
    const second = await health.report();
    expect(hung.calls).toHaveLength(1);
    expect(health.rounds).toBe(2);
    expect(second.checks.hung!.status).toBe('timeout');
    expect(second.checks.hung!.error).toMatch(/still pending from a run started \d+ ms ago/);
  });

  it('runs a check again once its late run has settled', async () => {
    let release!: () => void;
    const late = fake('late', (signal) => (signal === late.calls[0] ? new Promise<void>((r) => (release = r)) : undefined), 20);
    const health = new Health([late.check], { cacheMs: 0 });
    expect((await health.report()).checks.late!.status).toBe('timeout');
    release();
    await new Promise((r) => setImmediate(r));
    expect((await health.report()).checks.late!.status).toBe('ok');
    expect(late.calls).toHaveLength(2);
  });

  it('reports a check that throws, rejects or returns details as fail or ok with what it said', async () => {
    const health = new Health(
      [
        { name: 'throws', timeoutMs: 100, run: () => { throw new Error('disk on fire'); } },
        { name: 'rejects', timeoutMs: 100, run: () => Promise.reject(new Error('no route to host')) },
        { name: 'rejects_a_string', timeoutMs: 100, run: () => Promise.reject('plain string') },
        { name: 'detail', timeoutMs: 100, run: () => ({ rtt_ms: 3 }) },
      ],
      { cacheMs: 0 },
    );
    const r = await health.report();
    expect(r.checks.throws).toMatchObject({ status: 'fail', error: 'disk on fire' });
    expect(r.checks.rejects).toMatchObject({ status: 'fail', error: 'no route to host' });
    expect(r.checks.rejects_a_string).toMatchObject({ status: 'fail', error: 'plain string' });
    expect(r.checks.detail).toMatchObject({ status: 'ok', detail: { rtt_ms: 3 } });
    expect(r.status).toBe('fail');
  });

  it('replaces a check by name and forgets the cached report', async () => {
    const health = new Health([fake('a', () => undefined).check], { cacheMs: 60_000 });
    expect((await health.report()).status).toBe('ok');
    health.set(fake('a', () => Promise.reject(new Error('now broken'))).check);
    expect((await health.report()).checks.a).toMatchObject({ status: 'fail', error: 'now broken' });
  });
});

describe('judgePlatform', () => {
  const base = { nowWall: 100_000, startedAtWall: 90_000, allowanceMs: 35_000 };

  it('is ok before the first answer while the daemon is younger than the allowance', () => {
    expect(judgePlatform({ ...base, last: undefined, lastAcceptedWall: undefined }).ok).toBe(true);
  });

  it('fails when no ping was answered long after the start', () => {
    const v = judgePlatform({ ...base, startedAtWall: 0, last: undefined, lastAcceptedWall: undefined });
    expect(v).toEqual({ ok: false, error: 'no ping answered in 100000 ms since start (allowed 35000 ms)' });
  });

  it('fails with the outcome, status and age when the last ping was not accepted', () => {
    const v = judgePlatform({
      ...base,
      last: { atWall: 99_000, atMono: 0, outcome: 'throttled', status: 503 },
      lastAcceptedWall: 80_000,
    });
    expect(v).toEqual({ ok: false, error: 'last ping throttled (HTTP 503) 1000 ms ago; last accepted 20000 ms ago' });
  });

  it('fails when the last accepted ping is older than the promise allows', () => {
    const v = judgePlatform({ ...base, last: { atWall: 60_000, atMono: 0, outcome: 'accepted' }, lastAcceptedWall: 60_000 });
    expect(v).toEqual({ ok: false, error: 'last accepted 40000 ms ago, but pings are promised within 35000 ms' });
  });

  it('is ok when the last ping was accepted within the promise', () => {
    const v = judgePlatform({ ...base, last: { atWall: 99_000, atMono: 0, outcome: 'accepted' }, lastAcceptedWall: 99_000 });
    expect(v).toEqual({ ok: true, detail: { last_accepted_ms_ago: 1000 } });
  });
});

describe('stateDirCheck', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('writes, syncs and removes its probe file, leaving the directory as it was', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hbagg-health-'));
    dirs.push(dir);
    const report = await new Health([stateDirCheck(dir)], { cacheMs: 0 }).report();
    expect(report.checks.state_dir).toMatchObject({ status: 'ok' });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('fails and leaves a missing state dir missing (it never creates it)', async () => {
    const dir = path.join(mkdtempSync(path.join(tmpdir(), 'hbagg-health-')), 'gone');
    dirs.push(path.dirname(dir));
    const report = await new Health([stateDirCheck(dir)], { cacheMs: 0 }).report();
    expect(report.checks.state_dir).toMatchObject({ status: 'fail', error: expect.stringContaining('does not exist') });
    expect(existsSync(dir)).toBe(false);
  });

  it('fails readably when the state dir is not a directory', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hbagg-health-'));
    dirs.push(dir);
    const file = path.join(dir, 'a-file');
    writeFileSync(file, 'x');
    const report = await new Health([stateDirCheck(file)], { cacheMs: 0 }).report();
    expect(report.checks.state_dir!.status).toBe('fail');
    expect(report.checks.state_dir!.error).toMatch(/is not a directory/);
  });
});

describe('describeJsonError', () => {
  it('names the line, the column and the text near the error', () => {
    const text = '{\n  "v": 1,\n  "seq": ,\n}';
    let err: Error | undefined;
    try {
      JSON.parse(text);
    } catch (e) {
      err = e as Error;
    }
    const msg = describeJsonError(text, err!);
    expect(msg).toMatch(/line 3, column 10/);
    expect(msg).toContain('near `');
  });

  it('points at the end of a cut-off document', () => {
    const text = '{"v": 1';
    let err: Error | undefined;
    try {
      JSON.parse(text);
    } catch (e) {
      err = e as Error;
    }
    expect(describeJsonError(text, err!)).toMatch(/line 1, column 8/);
  });
});

describe('jsonErrorOffset', () => {
  const parses = (s: string) => {
    try {
      JSON.parse(s);
      return true;
    } catch {
      return false;
    }
  };

  it('finds no error in any JSON that JSON.stringify writes, indented or not', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(undefined, 2, '\t'), (v, indent) => {
        expect(jsonErrorOffset(JSON.stringify(v, null, indent))).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });

  it('agrees with JSON.parse on mutated JSON and arbitrary text', () => {
    const mutated = fc
      .tuple(fc.json(), fc.nat(), fc.constantFrom('', ',', '}', ']', '"', ':', 'x', '\\', '\n', '-', '0', ' '), fc.nat(3))
      .map(([s, at, ins, del]) => {
        const p = at % (s.length + 1);
        return s.slice(0, p) + ins + s.slice(p + del);
      });
    fc.assert(
      fc.property(fc.oneof(mutated, fc.string()), (s) => {
        const offset = jsonErrorOffset(s);
        expect(offset === undefined).toBe(parses(s));
        if (offset !== undefined) expect(offset).toBeLessThanOrEqual(s.length);
      }),
      { numRuns: 2000 },
    );
  });

  it('walks 30,000 nested arrays without recursion', () => {
    const deep = '['.repeat(30_000) + ']'.repeat(30_000);
    expect(jsonErrorOffset(deep)).toBeUndefined();
    expect(jsonErrorOffset(deep + ']')).toBe(60_000);
  });
});
