import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/daemon/logger.js';
import { JOURNAL_FILE, Journal, type JournalOptions } from '../../src/daemon/journal/journal.js';
import { decodeLine, encodeRecord, liveRetirements, replay, type RetireRecord } from '../../src/daemon/journal/journal-record.js';
import { LOCK_FILE, StateDirLockedError } from '../../src/daemon/journal/state-lock.js';
import type { RetiredInstance } from '../../src/core/tombstones.js';
import type { PingWorker } from '../../src/protocol/schemas.js';

function entry(worker: string, state: 'stopped' | 'lost' = 'stopped', extra: Partial<PingWorker> = {}): PingWorker {
  return {
    worker, instance: `${worker}-i1`, state, since: 1_700_000_000_000, first_seen: 1_699_999_000_000,
    last_seen: 1_699_999_999_000, beats: 3, seq: 42, interval_ms: 1000, reason: state === 'lost' ? 'heartbeat_timeout' : 'SIGTERM',
    ...extra,
  };
}

const open: Journal[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((j) => j.close()));
});

function setup(dir = mkdtempSync(path.join(tmpdir(), 'hbagg-journal-')), compactBytes?: number, more: Partial<JournalOptions> = {}) {
  const owed = new Map<string, PingWorker>();
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const journal = new Journal({
    dir, log: createLogger('debug', sink), instance: 'test', compactBytes, source: () => [...owed.values()], ...more,
  });
  open.push(journal);
  const put = (e: PingWorker) => owed.set(`${e.worker}/${e.instance}`, e);
  const ack = (e: PingWorker) => owed.delete(`${e.worker}/${e.instance}`);
  return { dir, file: path.join(dir, JOURNAL_FILE), journal, owed, put, ack, logs };
}

describe('the state journal', () => {
  it('gives back after a reopen exactly the entries still owed', async () => {
    const a = setup();
    expect(await a.journal.open()).toEqual([]);
    const [s1, s2, l1] = [entry('s1'), entry('s2'), entry('l1', 'lost')];
    a.put(s1);
    a.put(s2);
    a.put(l1);
    await a.journal.sync();
    a.ack(s2);
    await a.journal.sync();
    // No close: a crash leaves the file as the last fdatasync left it.
    const b = setup(a.dir);
    await a.journal.close(); // (only to release the in-process lock; it writes nothing new)
    const restored = await b.journal.open();
    expect(restored.sort((x, y) => x.worker.localeCompare(y.worker))).toEqual([l1, s1]);
  });

  it('keeps the latest state of an entry that changed, and forgets one that came back', async () => {
    const a = setup();
    await a.journal.open();
    const lost = entry('w', 'lost');
    a.put(lost);
    await a.journal.sync();
    const stopped = { ...lost, state: 'stopped' as const, reason: 'SIGTERM', since: lost.since + 5 };
    a.put(stopped);
    a.put(entry('back', 'lost'));
    await a.journal.sync();
    a.ack(entry('back', 'lost'));
    await a.journal.sync();
    await a.journal.close();
    const b = setup(a.dir);
    expect(await b.journal.open()).toEqual([stopped]);
  });

  it('group-commits a burst: 500 syncs in one tick cost one write and one fdatasync', async () => {
    const a = setup();
    await a.journal.open();
    const waits: Promise<void>[] = [];
    for (let i = 0; i < 500; i++) {
      a.put(entry(`w${i}`));
      waits.push(a.journal.sync());
    }
    await Promise.all(waits);
    expect(a.journal.stats.commits).toBe(1);
    expect(a.journal.stats.records).toBe(500);
    expect(a.journal.stats.syncs).toBe(500);
    // Nothing changed: a sync writes nothing.
    await a.journal.sync();
    expect(a.journal.stats.commits).toBe(1);
  });

  it('syncs asked for while a commit is being written share the next commit', async () => {
    const a = setup();
    await a.journal.open();
    a.put(entry('first'));
    const first = a.journal.sync();
    await new Promise((r) => setImmediate(r)); // the first commit has started writing
    const later: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) {
      a.put(entry(`later${i}`));
      later.push(a.journal.sync());
    }
    await Promise.all([first, ...later]);
    expect(a.journal.stats.commits).toBe(2);
    expect(a.journal.stats.records).toBe(51);
  });

  it('drops a torn last line, keeps every whole record, logs what it dropped, and rewrites the file clean', async () => {
    const a = setup();
    await a.journal.open();
    a.put(entry('a'));
    a.put(entry('b', 'lost'));
    await a.journal.sync();
    await a.journal.close();
    const torn = encodeRecord({ op: 'put', e: entry('c') });
    appendFileSync(a.file, torn.slice(0, torn.length - 20)); // kill -9 in the middle of a write
    const b = setup(a.dir);
    const restored = await b.journal.open();
    expect(restored.map((e) => e.worker).sort()).toEqual(['a', 'b']);
    for (const e of restored) b.put(e); // as the daemon restores them into its registry
    expect(b.journal.stats.dropped).toBe(1);
    const warn = b.logs.find((l) => String(l.msg).includes('dropped 1 damaged'));
    expect(warn?.dropped).toEqual({ torn: 1 });
    // The torn tail is gone, so the next append starts on a fresh line.
    const lines = readFileSync(b.file, 'utf8').split('\n').filter(Boolean);
    expect(lines.every((l) => decodeLine(l).ok)).toBe(true);
    b.put(entry('d'));
    await b.journal.sync();
    await b.journal.close();
    const c = setup(a.dir);
    expect((await c.journal.open()).map((e) => e.worker).sort()).toEqual(['a', 'b', 'd']);
    expect(c.journal.stats.dropped).toBe(0);
  });

  it('drops records with a bad checksum, bad JSON or a bad shape anywhere in the file', async () => {
    const a = setup();
    const good = [entry('g1'), entry('g2', 'lost'), entry('g3')];
    const flipped = encodeRecord({ op: 'put', e: entry('flip') }).replace('"seq":42', '"seq":43');
    const badShape = encodeRecord({ op: 'put', e: { ...entry('shape'), state: 'active' } });
    const unknownOp = `{"c":"00000000","r":{"op":"nope"}}\n`;
    writeFileSync(
      a.file,
      encodeRecord({ op: 'put', e: good[0]! }) + flipped + 'not json at all\n' + encodeRecord({ op: 'put', e: good[1]! }) +
        badShape + unknownOp + '\u0000\u0000\u0000\n' + encodeRecord({ op: 'put', e: good[2]! }),
    );
    const restored = await a.journal.open();
    expect(restored.map((e) => e.worker).sort()).toEqual(['g1', 'g2', 'g3']);
    expect(a.journal.stats.dropped).toBe(5);
  });

  it('opens a journal of pure garbage with nothing restored instead of crashing', async () => {
    const a = setup();
    const bytes = Buffer.alloc(64 * 1024);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
    writeFileSync(a.file, bytes);
    expect(await a.journal.open()).toEqual([]);
    expect(a.journal.stats.dropped).toBeGreaterThan(0);
    expect(statSync(a.file).size).toBe(0);
  });

  it('removes a temporary file left by a compaction that crashed before its rename', async () => {
    const a = setup();
    writeFileSync(`${a.file}.tmp`, 'half a compaction');
    writeFileSync(a.file, encodeRecord({ op: 'put', e: entry('kept') }));
    expect((await a.journal.open()).map((e) => e.worker)).toEqual(['kept']);
    expect(existsSync(`${a.file}.tmp`)).toBe(false);
  });

  it('compacts to the live set on demand and by itself when appended records outgrow it', async () => {
    const a = setup(undefined, 16 * 1024);
    await a.journal.open();
    // 2,000 entries that go lost and are accepted one by one: a journal that only appended would hold 4,000 records.
    for (let i = 0; i < 2000; i++) {
      const e = entry(`w${i}`, 'lost');
      a.put(e);
      await a.journal.sync();
      a.ack(e);
      await a.journal.sync();
    }
    a.put(entry('still-owed'));
    await a.journal.sync();
    expect(a.journal.stats.compactions).toBeGreaterThan(5);
    expect(statSync(a.file).size).toBeLessThan(2 * 16 * 1024 + 1024);
    await a.journal.compact();
    expect(readFileSync(a.file, 'utf8').split('\n').filter(Boolean)).toHaveLength(1);
    await a.journal.close();
    const b = setup(a.dir);
    expect((await b.journal.open()).map((e) => e.worker)).toEqual(['still-owed']);
  });

  it('is a no-op before open, refuses to promise durability after close, and close is safe to call twice', async () => {
    const a = setup();
    await a.journal.sync();
    await a.journal.open();
    await Promise.all([a.journal.close(), a.journal.close()]);
    await expect(a.journal.sync()).rejects.toThrow(/closed/);
    expect(a.journal.state).toBe('closed');
  });
});

describe('the state-dir lock', () => {
  it('refuses a second journal on the same dir, naming the dir and the pid, until the first closes', async () => {
    const a = setup();
    await a.journal.open();
    const b = setup(a.dir);
    const err = await b.journal.open().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateDirLockedError);
    expect(String((err as Error).message)).toContain(a.dir);
    expect(String((err as Error).message)).toContain(`pid ${process.pid}`);
    expect(b.journal.state).toBe('closed');
    await a.journal.close();
    expect(existsSync(path.join(a.dir, LOCK_FILE))).toBe(false);
    const c = setup(a.dir);
    await c.journal.open();
  });

  it('refuses a dir locked by another live process', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      const a = setup();
      writeFileSync(path.join(a.dir, LOCK_FILE), `${JSON.stringify({ pid: child.pid, host: 'h' })}\n`);
      const err = await a.journal.open().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StateDirLockedError);
      expect((err as StateDirLockedError).pid).toBe(child.pid);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('takes over the lock of a dead daemon (kill -9) and says so', async () => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    const deadPid = child.pid!;
    await new Promise((r) => child.once('exit', r));
    const a = setup();
    writeFileSync(path.join(a.dir, LOCK_FILE), `${JSON.stringify({ pid: deadPid })}\n`);
    await a.journal.open();
    expect(a.logs.some((l) => l.stale_pid === deadPid)).toBe(true);
    const held = JSON.parse(readFileSync(path.join(a.dir, LOCK_FILE), 'utf8')) as { pid: number };
    expect(held.pid).toBe(process.pid);
  });

  it('takes over an empty or unreadable lock file (a crash between create and write)', async () => {
    const a = setup();
    writeFileSync(path.join(a.dir, LOCK_FILE), '');
    await a.journal.open();
    expect(a.journal.state).toBe('open');
  });
});

const NOW = 1_763_719_200_000;
const MIN = 60_000;
const retire = (worker: string, instance: string, as: RetireRecord['as'], at: number): RetireRecord => ({
  op: 'retire', worker, instance, as, at,
});

describe('retire records', () => {
  it('round-trip through their line format and refuse a bad phase, a missing or non-finite time', () => {
    const r = retire('w1', 'i1', 'draining', NOW);
    const line = encodeRecord(r);
    expect(line).toMatch(/^\{"c":"[0-9a-f]{8}","r":\{"op":"retire","worker":"w1","instance":"i1","as":"draining","at":1763719200000\}\}\n$/);
    expect(decodeLine(line.trimEnd())).toEqual({ ok: true, record: r });
    for (const bad of [
      { op: 'retire', worker: 'w1', instance: 'i1', as: 'active', at: NOW },
      { op: 'retire', worker: 'w1', instance: 'i1', as: 'stopped' },
      { op: 'retire', worker: 'w1', instance: 'i1', as: 'stopped', at: '1' },
      { op: 'retire', worker: 'w1', as: 'stopped', at: NOW },
    ]) {
      // Hand-built with a correct checksum: only the shape is wrong.
      const text = encodeRecord(bad as unknown as RetireRecord).trimEnd();
      expect(decodeLine(text)).toEqual({ ok: false, why: 'schema' });
    }
  });

  it('replay the last retirement of each instance, in the order last written, untouched by the acks of terminal entries', () => {
    const s = entry('w1');
    const buf = Buffer.from(
      encodeRecord(retire('w1', 'w1-i1', 'draining', NOW)) +
        encodeRecord(retire('w2', 'i2', 'replaced', NOW + 1)) +
        encodeRecord({ op: 'put', e: s }) +
        encodeRecord(retire('w1', 'w1-i1', 'stopped', NOW + 2)) +
        encodeRecord({ op: 'ack', worker: 'w1', instance: 'w1-i1' }),
    );
    const out = replay(buf);
    expect(out.entries).toEqual([]);
    expect(out.retired).toEqual([retire('w2', 'i2', 'replaced', NOW + 1), retire('w1', 'w1-i1', 'stopped', NOW + 2)]);
  });

  it('keep at compaction only those younger than the retention, the newest within the limit, one per instance, oldest first', () => {
    const records = [
      retire('w', 'expired', 'stopped', NOW - 10 * MIN),
      retire('w', 'b', 'stopped', NOW - 3 * MIN),
      retire('w', 'a', 'draining', NOW - 9 * MIN),
      retire('w', 'c', 'replaced', NOW - 1 * MIN),
      retire('w', 'a', 'stopped', NOW - 2 * MIN), // a again: this one wins
      retire('w', 'future', 'stopped', NOW + 5 * MIN), // the wall clock stepped back since
    ];
    expect(liveRetirements(records, NOW, 10 * MIN, 100).map((r) => `${r.instance}:${r.as}`)).toEqual([
      'b:stopped', 'a:stopped', 'c:replaced', 'future:stopped',
    ]);
    expect(liveRetirements(records, NOW, 10 * MIN, 2).map((r) => r.instance)).toEqual(['c', 'future']);
  });
});

describe('the state journal: retirements', () => {
  it('makes a retirement durable with the sync after it, and gives it back once after a reopen (no close: a crash)', async () => {
    const a = setup(undefined, undefined, { wallNow: () => NOW });
    await a.journal.open();
    a.journal.retire('w1', 'i1', 'draining', NOW - 1000);
    a.journal.retire('w2', 'i2', 'stopped', NOW - 500);
    await a.journal.sync();
    expect(a.journal.stats).toMatchObject({ commits: 1, records: 2, retires: 2 });

    const b = setup(a.dir, undefined, { wallNow: () => NOW + 1000 });
    await a.journal.close(); // (releases the in-process lock; nothing new is written)
    expect(await b.journal.open()).toEqual([]);
    expect(b.journal.takeRetired()).toEqual([retire('w1', 'i1', 'draining', NOW - 1000), retire('w2', 'i2', 'stopped', NOW - 500)]);
    expect(b.journal.takeRetired()).toEqual([]);
    expect(b.logs.find((l) => l.msg === 'state journal open')).toMatchObject({ restored: 0, retired: 2 });
  });

  it('writes a retirement even when nobody syncs after it', async () => {
    const a = setup();
    await a.journal.open();
    a.journal.retire('w1', 'i1', 'replaced', NOW);
    await waitUntil(() => a.journal.stats.commits === 1);
    expect(readFileSync(a.file, 'utf8').split('\n').filter(Boolean).map((l) => decodeLine(l))).toEqual([
      { ok: true, record: retire('w1', 'i1', 'replaced', NOW) },
    ]);
  });

  it('group-commits retirements with terminal entries: 300 Leaves in one tick cost one write and one fdatasync', async () => {
    const a = setup();
    await a.journal.open();
    const waits: Promise<void>[] = [];
    for (let i = 0; i < 300; i++) {
      const e = entry(`w${i}`);
      a.put(e);
      a.journal.retire(e.worker, e.instance, 'stopped', NOW);
      waits.push(a.journal.sync());
    }
    await Promise.all(waits);
    expect(a.journal.stats).toMatchObject({ commits: 1, records: 600, retires: 300 });
    // Each retire record is ~100 bytes plus the ids.
    const sizes = readFileSync(a.file, 'utf8').split('\n').filter((l) => l.includes('"op":"retire"')).map((l) => l.length + 1);
    expect(sizes).toHaveLength(300);
    expect(Math.max(...sizes)).toBeLessThan(140);
  });

  it('drops, when it opens, the retirements past the retention or beyond the limit, and rewrites the file without them', async () => {
    const a = setup();
    writeFileSync(
      a.file,
      [
        retire('w', 'old', 'stopped', NOW - 11 * MIN),
        retire('w', 'r1', 'stopped', NOW - 5 * MIN),
        retire('w', 'r2', 'draining', NOW - 4 * MIN),
        retire('w', 'r3', 'replaced', NOW - 3 * MIN),
      ]
        .map(encodeRecord)
        .join('') + encodeRecord({ op: 'put', e: entry('kept') }),
    );
    const b = setup(a.dir, undefined, { wallNow: () => NOW, retentionMs: 10 * MIN, maxRetired: 2 });
    expect((await b.journal.open()).map((e) => e.worker)).toEqual(['kept']);
    expect(b.journal.takeRetired().map((r) => r.instance)).toEqual(['r2', 'r3']);
    expect(b.journal.stats.retiredKept).toBe(2);
    const lines = readFileSync(b.file, 'utf8').split('\n').filter(Boolean);
    expect(lines.map((l) => decodeLine(l)).map((d) => (d.ok && d.record.op === 'retire' ? d.record.instance : 'put'))).toEqual([
      'r2', 'r3', 'put',
    ]);
  });

  it('compacts to the retirements in force (its source), dated by their age on the wall clock, the newest within the limit', async () => {
    let wall = NOW;
    const retiredAt: RetireRecord[] = [];
    const inForce = (): RetiredInstance[] =>
      retiredAt.map((r) => ({ worker: r.worker, instance: r.instance, as: r.as, ageMs: wall - r.at }));
    const a = setup(undefined, undefined, { wallNow: () => wall, retentionMs: 10 * MIN, maxRetired: 3, retired: inForce });
    await a.journal.open();
    for (let i = 0; i < 6; i++) {
      const r = retire('w', `i${i}`, 'stopped', NOW + i * MIN);
      retiredAt.push(r); // the registry retires first, then the journal hears of it
      a.journal.retire(r.worker, r.instance, r.as, r.at);
    }
    await a.journal.sync();
    wall = NOW + 11 * MIN; // i0 and i1 are past the retention now; of the other four, the limit keeps three
    await a.journal.compact();
    expect(a.journal.stats.retiredKept).toBe(3);
    const b = setup(a.dir, undefined, { wallNow: () => wall });
    await a.journal.close();
    await b.journal.open();
    expect(b.journal.takeRetired()).toEqual([3, 4, 5].map((i) => retire('w', `i${i}`, 'stopped', NOW + i * MIN)));
  });

  it('compacts thousands of records in slices and gives every one back', async () => {
    const retiredAt: RetireRecord[] = [];
    const a = setup(undefined, undefined, {
      wallNow: () => NOW,
      retired: () => retiredAt.map((r) => ({ worker: r.worker, instance: r.instance, as: r.as, ageMs: NOW - r.at })),
    });
    await a.journal.open();
    for (let i = 0; i < 5000; i++) retiredAt.push(retire(`w${i % 50}`, `i${i}`, 'draining', NOW - 5000 + i));
    for (let i = 0; i < 3000; i++) a.put(entry(`p${i}`));
    await a.journal.compact();
    expect(a.journal.stats).toMatchObject({ held: 3000, retiredKept: 5000 });
    const b = setup(a.dir, undefined, { wallNow: () => NOW });
    await a.journal.close();
    expect(await b.journal.open()).toHaveLength(3000);
    expect(b.journal.takeRetired()).toEqual(retiredAt);
    expect(b.journal.stats.dropped).toBe(0);
  });

  it('ignores retirements before open and after close', async () => {
    const a = setup();
    a.journal.retire('w', 'early', 'stopped', NOW);
    await a.journal.open();
    await a.journal.close();
    a.journal.retire('w', 'late', 'stopped', NOW);
    expect(a.journal.stats.retires).toBe(0);
    expect(readFileSync(a.file, 'utf8')).toBe('');
  });
});

/** Polls a condition every 5 ms, for at most 2 s. */
async function waitUntil(fn: () => boolean): Promise<void> {
  const end = Date.now() + 2000;
  while (!fn()) {
    if (Date.now() > end) throw new Error('condition not met within 2 s');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('the state journal: live instances (2.7)', () => {
  const alive = (worker: string, total: number): PingWorker => ({
    worker, instance: `${worker}-i1`, state: 'active', since: 1_700_000_000_000, first_seen: 1_700_000_000_000,
    last_seen: 1_700_000_001_000, beats: 0, beats_total: total, seq: total, interval_ms: 1000,
  });

  it('keeps each live instance with its latest beats_total across a crash and a compaction, and forgets one that turned terminal and was accepted', async () => {
    const a = setup();
    await a.journal.open();
    a.put(alive('w1', 3));
    a.put(alive('w2', 5));
    await a.journal.sync();
    a.put(alive('w1', 7));
    a.ack(alive('w2', 5));
    a.put(entry('w2', 'lost', { instance: 'w2-i1', beats_total: 5 }));
    await a.journal.sync();
    const lines = readFileSync(a.file, 'utf8').split('\n').filter(Boolean);
    expect(lines.filter((l) => l.includes('"op":"live"'))).toHaveLength(3);
    await a.journal.compact();
    a.ack(entry('w2', 'lost', { instance: 'w2-i1' }));
    await a.journal.sync();
    const b = setup(a.dir);
    await a.journal.close();
    expect(await b.journal.open()).toEqual([alive('w1', 7)]);
  });

  it('reads a journal written before live records existed as before, and drops a live record that is not active', () => {
    const old = [
      encodeRecord({ op: 'put', e: entry('s1') }),
      encodeRecord({ op: 'retire', worker: 's1', instance: 's1-i1', as: 'stopped', at: 1_700_000_000_000 }),
      encodeRecord({ op: 'put', e: entry('l1', 'lost') }),
      encodeRecord({ op: 'ack', worker: 'l1', instance: 'l1-i1' }),
    ].join('');
    const r = replay(Buffer.from(old));
    expect(r.entries).toEqual([entry('s1')]);
    expect(r.dropped).toEqual({});
    expect(decodeLine(encodeRecord({ op: 'live', e: entry('x') }).trimEnd())).toEqual({ ok: false, why: 'schema' });
    expect(decodeLine(encodeRecord({ op: 'live', e: alive('x', 1) }).trimEnd())).toEqual({ ok: true, record: { op: 'live', e: alive('x', 1) } });
  });
});
