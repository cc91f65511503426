import { afterEach, describe, expect, it, vi } from 'vitest';
import { createTask, parse } from 'node-cron';
import { MAX_ARM_MS, nextLocalMatch, scheduleCron, type CronJob } from '../../src/daemon/cron-timer.js';

const jobs: CronJob[] = [];
afterEach(() => {
  for (const j of jobs.splice(0)) j.stop();
});

describe('cron timer (housekeeping schedules)', () => {
  it('runs an every-second schedule once a second', async () => {
    const runs: number[] = [];
    jobs.push(scheduleCron('* * * * * *', () => runs.push(Date.now()), { name: 'every-second' }));
    await new Promise((r) => setTimeout(r, 2_600));
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(runs.length).toBeLessThanOrEqual(3);
  });

  it('arms one timer for a far schedule, at most a minute ahead, instead of waking every second', async () => {
    const spy = vi.spyOn(globalThis, 'setTimeout');
    try {
      const job = scheduleCron('0 0 3 * * *', () => undefined, { name: 'nightly' });
      jobs.push(job);
      await new Promise((r) => setTimeout(r, 2_200));
      const armed = spy.mock.calls.filter(([, ms]) => ms === MAX_ARM_MS);
      expect(armed.length).toBe(1);
      expect(job.nextRunAt).toBeGreaterThan(Date.now());
      expect(new Date(job.nextRunAt).getSeconds()).toBe(0);
    } finally {
      spy.mockRestore();
    }
  });

  it('skips a run while the previous one is still running, and goes on after', async () => {
    let overlaps = 0;
    let runs = 0;
    let release: () => void = () => undefined;
    const slow = new Promise<void>((r) => (release = r));
    jobs.push(
      scheduleCron(
        '* * * * * *',
        () => {
          runs++;
          return runs === 1 ? slow : undefined;
        },
        { name: 'slow', onOverlap: () => overlaps++ },
      ),
    );
    await new Promise((r) => setTimeout(r, 2_300));
    expect(runs).toBe(1);
    expect(overlaps).toBeGreaterThanOrEqual(1);
    release();
    const deadline = Date.now() + 3_000;
    while (runs < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(runs).toBeGreaterThanOrEqual(2);
  });

  it('reports a run that throws or rejects and keeps the schedule', async () => {
    const errors: string[] = [];
    let n = 0;
    jobs.push(
      scheduleCron(
        '* * * * * *',
        () => {
          n++;
          if (n === 1) throw new Error('boom');
          return Promise.reject(new Error('later'));
        },
        { name: 'failing', onError: (e) => errors.push((e as Error).message) },
      ),
    );
    await new Promise((r) => setTimeout(r, 2_300));
    expect(errors.slice(0, 2)).toEqual(['boom', 'later']);
  });

  it('refuses a bad expression at once', () => {
    expect(() => scheduleCron('61 * * * * *', () => undefined, { name: 'bad' })).toThrow();
  });

  it('stops: no run after stop()', async () => {
    let runs = 0;
    const job = scheduleCron('* * * * * *', () => runs++, { name: 'stopped' });
    job.stop();
    await new Promise((r) => setTimeout(r, 1_200));
    expect(runs).toBe(0);
  });
});

describe('next run of a cron expression, in local time without Intl', () => {
  const expressions = [
    '* * * * * *',
    '*/30 * * * * *',
    '0 * * * * *',
    '0 */5 * * * *',
    '15 10 3 * * *',
    '0 0 0 1 * *',
    '0 0 12 * * 1',
    '0 0 0 29 2 *',
    '0 30 9 * 1-6 1-5',
    '0 0 */6 * * *',
  ];

  it.each(expressions)('agrees with node-cron on "%s"', (expr) => {
    // node-cron computes from the current time: retry if a second boundary passes between the two.
    for (let attempt = 0; attempt < 3; attempt++) {
      const now = Date.now();
      const theirs = createTask(expr, () => undefined).getNextRuns(1)[0]?.getTime();
      if (Math.floor(Date.now() / 1000) !== Math.floor(now / 1000)) continue;
      expect(nextLocalMatch(parse(expr), now)).toBe(theirs);
      return;
    }
    throw new Error('could not compare within one second');
  });

  it('matches, per node-cron, and is the first second that does, from random start times', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    for (const expr of ['*/7 * * * * *', '0 */5 * * * *', '0 0 */6 * * *']) {
      const task = createTask(expr, () => undefined);
      for (let i = 0; i < 20; i++) {
        const after = Date.UTC(2026, 0, 1) + Math.floor(rand() * 365 * 86_400_000);
        const next = nextLocalMatch(parse(expr), after) as number;
        expect(next).toBeGreaterThan(after);
        expect(task.match(new Date(next))).toBe(true);
        // No earlier second matches: whole minutes for the minute schedules, then the last minute second by second.
        const first = Math.floor(after / 1000) * 1000 + 1000;
        if (expr.startsWith('0 ')) {
          for (let m = Math.ceil(first / 60_000) * 60_000; m < next - 60_000; m += 60_000) expect(task.match(new Date(m))).toBe(false);
        }
        for (let t = Math.max(first, next - 60_000); t < next; t += 1000) expect(task.match(new Date(t))).toBe(false);
      }
      void task.destroy();
    }
  });
});
