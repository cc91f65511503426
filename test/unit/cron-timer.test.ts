import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_ARM_MS, scheduleCron, type CronJob } from '../../src/daemon/cron-timer.js';

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
