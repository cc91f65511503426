import { describe, expect, it } from 'vitest';
import { orTimeout, settleWithin, within, type Timers } from '../../src/util/index.js';

/** Timers fired by hand: `fire()` runs every pending one. */
function manualTimers(): Timers & { pending(): number; fire(): void } {
  const timers = new Map<number, () => void>();
  let next = 0;
  return {
    setTimeout: (fn) => {
      timers.set(++next, fn);
      return next;
    },
    clearTimeout: (handle) => void timers.delete(handle as number),
    pending: () => timers.size,
    fire: () => {
      for (const [id, fn] of [...timers]) {
        timers.delete(id);
        fn();
      }
    },
  };
}

describe('deadline races', () => {
  it('within: gives the value when the promise wins, and clears its timer', async () => {
    const timers = manualTimers();
    expect(await within(Promise.resolve(7), 1_000, timers)).toEqual({ value: 7 });
    expect(timers.pending()).toBe(0);
  });

  it('within: gives undefined when the injected timer fires first', async () => {
    const timers = manualTimers();
    const race = within(new Promise(() => undefined), 1_000, timers);
    expect(timers.pending()).toBe(1);
    timers.fire();
    expect(await race).toBeUndefined();
  });

  it('within: rejects as the promise does', async () => {
    await expect(within(Promise.reject(new Error('no')), 1_000, manualTimers())).rejects.toThrow('no');
  });

  it('settleWithin: true for a rejection in time, false once the time runs out; never rejects', async () => {
    expect(await settleWithin(Promise.reject(new Error('no')), 1_000, manualTimers())).toBe(true);
    const timers = manualTimers();
    const race = settleWithin(new Promise(() => undefined), 1_000, timers);
    timers.fire();
    expect(await race).toBe(false);
  });

  it('orTimeout: names what did not finish (real timers)', async () => {
    await expect(orTimeout(new Promise(() => undefined), 5, 'the flush')).rejects.toThrow('the flush did not finish within 5 ms');
  });
});
