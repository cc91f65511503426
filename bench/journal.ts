/**
 * The state journal's cost: records/s, fsyncs per event batch, bytes per
 * record, compaction time, and what one full rewrite per event would cost
 * instead. `npx tsx bench/journal.ts [dir]` (dir: where to write, default a
 * temp dir; point it at the disk the state dir will live on).
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Journal } from '../src/daemon/journal/journal.js';
import type { PingWorker } from '../src/protocol/schemas.js';

const root = process.argv[2] ?? mkdtempSync(path.join(tmpdir(), 'hbagg-bench-journal-'));
const log = pino({ level: 'silent' });

function entry(i: number): PingWorker {
  return {
    worker: `worker-${i}`, instance: `inst-${i.toString(16).padStart(16, '0')}`, state: i % 2 ? 'lost' : 'stopped',
    since: 1_763_719_199_000 + i, reason: i % 2 ? 'heartbeat_timeout' : 'SIGTERM', first_seen: 1_763_719_000_000,
    last_seen: 1_763_719_190_000, beats: 0, seq: 88 + i, interval_ms: 1000, status: 'idle', meta: { zone: 'a', slot: i },
  };
}

async function fresh(name: string) {
  const dir = path.join(root, name);
  const owed = new Map<number, PingWorker>();
  const j = new Journal({ dir, log, instance: 'bench', source: () => [...owed.values()] });
  await j.open();
  return { j, owed, dir };
}

const ms = (t0: number) => performance.now() - t0;
const rows: Record<string, string | number>[] = [];

// 1. A burst: 10,000 terminal events in one tick (a node draining at once), one sync() per event.
{
  const { j, owed } = await fresh('burst');
  const t0 = performance.now();
  const waits: Promise<void>[] = [];
  for (let i = 0; i < 10_000; i++) {
    owed.set(i, entry(i));
    waits.push(j.sync());
  }
  await Promise.all(waits);
  const t = ms(t0);
  rows.push({ case: 'burst of 10k events', events: 10_000, commits: j.stats.commits, fsyncs: j.stats.commits, ms: t.toFixed(1), 'records/s': Math.round(10_000 / (t / 1000)), bytes: j.stats.bytes, 'bytes/record': Math.round(j.stats.bytes / 10_000) });
  const c0 = performance.now();
  await j.compact();
  rows.push({ case: 'compaction of 10k live entries', events: 0, commits: 0, fsyncs: 2, ms: ms(c0).toFixed(1), 'records/s': Math.round(10_000 / (ms(c0) / 1000)), bytes: j.stats.bytes, 'bytes/record': Math.round(j.stats.bytes / 10_000) });
  await j.close();
}

// 2. Events one at a time, each awaited (Leaves arriving alone): the worst case, one fsync each.
{
  const { j, owed } = await fresh('serial');
  const n = 1000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    owed.set(i, entry(i));
    await j.sync();
  }
  const t = ms(t0);
  rows.push({ case: 'serial, each awaited', events: n, commits: j.stats.commits, fsyncs: j.stats.commits, ms: t.toFixed(1), 'records/s': Math.round(n / (t / 1000)), bytes: j.stats.bytes, 'bytes/record': Math.round(j.stats.bytes / n) });
  await j.close();
}

// 3. A steady stream: 20,000 events, 20 per event-loop turn, nobody waits (detectLoss, acks); then half acknowledged.
{
  const { j, owed } = await fresh('stream');
  const n = 20_000;
  const t0 = performance.now();
  const waits: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    owed.set(i, entry(i));
    waits.push(j.sync());
    if (i % 20 === 19) await new Promise((r) => setImmediate(r));
  }
  for (let i = 0; i < n; i += 2) {
    owed.delete(i);
    waits.push(j.sync());
    if (i % 40 === 38) await new Promise((r) => setImmediate(r));
  }
  await Promise.all(waits);
  const t = ms(t0);
  const events = n + n / 2;
  await j.close(); // lets a compaction the growth asked for finish
  rows.push({ case: 'stream, 20/turn, + acks', events, commits: j.stats.commits, fsyncs: j.stats.commits + 2 * j.stats.compactions, ms: t.toFixed(1), 'records/s': Math.round(j.stats.records / (t / 1000)), bytes: statSync(j.file).size, 'bytes/record': Math.round(statSync(j.file).size / Math.max(1, j.stats.held)), compactions: j.stats.compactions });
}

// 4. The alternative the journal avoids: rewrite the whole state (1,000 owed entries) with fsync per event.
{
  const { j, owed } = await fresh('rewrite');
  for (let i = 0; i < 1000; i++) owed.set(i, entry(i));
  const n = 200;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    owed.set(1000 + i, entry(1000 + i));
    await j.compact();
  }
  const t = ms(t0);
  rows.push({ case: 'full rewrite per event (1k owed)', events: n, commits: n, fsyncs: 2 * n, ms: t.toFixed(1), 'records/s': Math.round(n / (t / 1000)), bytes: j.stats.bytes, 'bytes/record': Math.round(j.stats.bytes / owed.size) });
  await j.close();
}

console.table(rows);
if (process.argv[2] === undefined) rmSync(root, { recursive: true, force: true });
