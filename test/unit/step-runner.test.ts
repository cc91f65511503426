import { describe, expect, it } from 'vitest';
import { errorText, StepRunner } from '../../src/util/index.js';

describe('StepRunner: ordered best-effort steps', () => {
  it('runs every step in order, a throwing one included, and reports each', async () => {
    let t = 0;
    const ran: string[] = [];
    const runner = new StepRunner({ now: () => t });
    await runner.run('first', () => {
      ran.push('first');
      t += 5;
    });
    await runner.run('second', () => {
      ran.push('second');
      throw new Error('boom');
    });
    await runner.run('third', async () => {
      ran.push('third');
      t += 2;
    });
    expect(ran).toEqual(['first', 'second', 'third']);
    expect(runner.results).toEqual([
      { name: 'first', ms: 5, ok: true },
      { name: 'second', ms: 0, ok: false, error: 'boom' },
      { name: 'third', ms: 2, ok: true },
    ]);
  });

  it('hands the error a step threw (not just its text) to onError, then tells onStep', async () => {
    const seen: unknown[] = [];
    const err = new TypeError('bad');
    const runner = new StepRunner({
      onError: (name, e) => seen.push(['error', name, e]),
      onStep: (r) => seen.push(['step', r.name, r.ok]),
    });
    await runner.run('sync throw', () => {
      throw err;
    });
    await runner.run('rejects in time', () => Promise.reject(err), 1_000);
    expect(seen).toEqual([
      ['error', 'sync throw', err],
      ['step', 'sync throw', false],
      ['error', 'rejects in time', err],
      ['step', 'rejects in time', false],
    ]);
  });

  it('counts a step that has not settled by its timeout as failed, raced on the injected race', async () => {
    const raced: number[] = [];
    const runner = new StepRunner({
      settleWithin: async (_p, ms) => {
        raced.push(ms);
        return false; // the (fake) time ran out
      },
    });
    const r = await runner.run('hangs', () => new Promise(() => undefined), 250);
    expect(raced).toEqual([250]);
    expect(r).toMatchObject({ name: 'hangs', ok: false, error: 'did not finish within 250 ms' });
  });

  it('calls the first step synchronously, so it takes effect before the caller awaits', () => {
    let called = false;
    void new StepRunner().run('at once', () => {
      called = true;
    });
    expect(called).toBe(true);
  });
});

describe('errorText', () => {
  it('reads an error by its message, by its name when it has none, and anything else as a string', () => {
    expect(errorText(new Error('disk full'))).toBe('disk full');
    expect(errorText(new RangeError())).toBe('RangeError');
    expect(errorText('plain')).toBe('plain');
    expect(errorText(42)).toBe('42');
  });
});
