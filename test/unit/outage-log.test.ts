/** An outage is logged at once, then at most every `everyMs`, and its end once. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/daemon/logger.js';
import { OutageLog } from '../../src/daemon/outage-log.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, log: createLogger('trace', sink) };
}

describe('OutageLog', () => {
  it('warns at the first failure, then once per interval with the count not logged, and says once when it is back', async () => {
    const { lines, log } = capture();
    let now = 0;
    const o = new OutageLog({ log, everyMs: 30_000, now: () => now });
    for (now = 0; now < 65_000; now += 1000) o.down({ url: 'u' }, 'down');
    o.up({ url: 'u' }, 'back');
    o.up({ url: 'u' }, 'back');
    await new Promise((r) => setImmediate(r));
    expect(lines.map((l) => [l.level, l.msg, l.down_ms, l.not_logged])).toEqual([
      ['warn', 'down', 0, undefined],
      ['warn', 'down', 30_000, 29],
      ['warn', 'down', 60_000, 29],
      ['info', 'back', 65_000, undefined],
    ]);
  });

  it('logs nothing for a thing that was never down', async () => {
    const { lines, log } = capture();
    new OutageLog({ log, now: () => 0 }).up({}, 'back');
    await new Promise((r) => setImmediate(r));
    expect(lines).toEqual([]);
  });
});
