import { describe, expect, it } from 'vitest';
import { ConnectorSchedule } from '../../../src/daemon/opencti/connector-schedule.js';

const PERIOD = 120_000;
const live = (ids: string[], epoch = 'e') => new Map(ids.map((id) => [id, epoch]));
const ids = (n: number) => Array.from({ length: n }, (_, i) => `c${i}`);

/** Runs the schedule on a fake clock, answering every ping ok; returns every (time, group) sent. */
function simulate(s: ConnectorSchedule, untilMs: number, aliases: number, stepMs = 100) {
  const sent: { at: number; group: string[] }[] = [];
  for (let now = 0; now <= untilMs; now += stepMs) {
    for (const group of s.take(now, aliases, 4)) {
      sent.push({ at: now, group });
      for (const id of group) s.done(id, now, 'ok');
    }
  }
  return sent;
}

describe('connector schedule (fake clock)', () => {
  it('pings a connector at once when it appears, then never lets more than a period pass', () => {
    const s = new ConnectorSchedule(PERIOD);
    expect(s.sync(live(ids(10)), 0).appeared).toHaveLength(10);
    const sent = simulate(s, 10 * PERIOD, 1);
    for (const id of ids(10)) {
      const times = sent.filter((x) => x.group.includes(id)).map((x) => x.at);
      expect(times[0]).toBeLessThan(1000); // four requests in flight at most: the first ten go out in three steps
      const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
      expect(Math.max(...gaps)).toBeLessThanOrEqual(PERIOD);
      expect(times.length).toBeGreaterThanOrEqual(10);
      expect(times.length).toBeLessThanOrEqual(12);
    }
  });

  it('spreads connectors that appeared together evenly over the period (no burst every period)', () => {
    const s = new ConnectorSchedule(PERIOD);
    s.sync(live(ids(100)), 0);
    const sent = simulate(s, 5 * PERIOD, 1);
    // In the 4th period, no tenth of the period holds more than twice its share.
    const window = sent.filter((x) => x.at >= 3 * PERIOD && x.at < 4 * PERIOD);
    expect(window).toHaveLength(100);
    const buckets = Array.from({ length: 10 }, () => 0);
    for (const x of window) buckets[Math.floor(((x.at - 3 * PERIOD) / PERIOD) * 10)]! += 1;
    expect(Math.max(...buckets)).toBeLessThanOrEqual(20);
  });

  it('with 25 aliases, 100 connectors settle into about 4 requests per period', () => {
    const s = new ConnectorSchedule(PERIOD);
    s.sync(live(ids(100)), 0);
    const sent = simulate(s, 6 * PERIOD, 25);
    const window = sent.filter((x) => x.at >= 4 * PERIOD && x.at < 5 * PERIOD);
    expect(window.length).toBeLessThanOrEqual(6);
    expect(window.every((x) => x.group.length <= 25)).toBe(true);
    for (const id of ids(100)) {
      const times = sent.filter((x) => x.group.includes(id)).map((x) => x.at);
      const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
      expect(Math.max(...gaps)).toBeLessThanOrEqual(PERIOD);
      // Pulled forward at most to half a period: never more than twice the rate.
      expect(Math.min(...gaps.slice(1))).toBeGreaterThanOrEqual(PERIOD / 2);
    }
  });

  it('forgets a connector with no live replica: it is never due again', () => {
    const s = new ConnectorSchedule(PERIOD);
    s.sync(live(['a', 'b']), 0);
    simulate(s, 0, 1);
    expect(s.sync(live(['a']), 1000).gone).toEqual(['b']);
    const sent = simulate(s, 5 * PERIOD, 1);
    expect(sent.some((x) => x.group.includes('b'))).toBe(false);
  });

  it('backs off an unknown connector from one period to 32, and retries at once when a replica restarts', () => {
    const s = new ConnectorSchedule(PERIOD);
    s.sync(live(['x']), 0);
    const tries: number[] = [];
    for (let now = 0; now <= 200 * PERIOD; now += 1000) {
      for (const g of s.take(now, 1, 4)) {
        tries.push(now);
        s.done(g[0] as string, now, 'unknown');
      }
    }
    const gaps = tries.slice(1).map((t, i) => t - (tries[i] as number));
    expect(gaps.slice(0, 6)).toEqual([1, 2, 4, 8, 16, 32].map((k) => k * PERIOD));
    expect(Math.max(...gaps)).toBe(32 * PERIOD);
    const t = 200 * PERIOD + 5;
    s.sync(live(['x'], 'restarted'), t);
    expect(s.take(t, 1, 4)).toEqual([['x']]);
  });

  it('keeps connectors of a failed request due, and in flight only once', () => {
    const s = new ConnectorSchedule(PERIOD);
    s.sync(live(['a']), 0);
    expect(s.take(0, 1, 4)).toEqual([['a']]);
    expect(s.take(0, 1, 4)).toEqual([]);
    s.release('a');
    expect(s.nextDueAt()).toBe(0);
    expect(s.take(5, 1, 4)).toEqual([['a']]);
  });
});
