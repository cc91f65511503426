/**
 * The state-dir lock against real processes: a pid reused after a crash, a
 * live daemon, and several daemons racing for one stale lock.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ownerStatus, systemProbe, type ProcessProbe } from '../../src/daemon/journal/process-identity.js';
import { LOCK_FILE, StateDirLockedError, StateLock } from '../../src/daemon/journal/state-lock.js';
import { waitFor } from '../../testing/index.js';

const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/lock-contender.ts');
const children: ChildProcess[] = [];
const locks: StateLock[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const l of locks.splice(0)) l.release();
});

const stateDir = () => mkdtempSync(path.join(tmpdir(), 'hbagg-lock-'));

function sleeper(): ChildProcess {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  children.push(child);
  return child;
}

/** A lock contender in its own process; resolves with its one-line verdict. */
function contender(dir: string, env: Record<string, string> = {}): Promise<{ won: boolean; pid: number; error?: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    env: { PATH: process.env.PATH ?? '', DIR: dir, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  return waitFor(() => (out.includes('\n') ? (JSON.parse(out.split('\n')[0] ?? '') as { won: boolean; pid: number; error?: string }) : undefined), {
    timeoutMs: 20_000,
    message: 'the contender to report',
  });
}

describe('state-dir lock', () => {
  it('takes over a lock whose pid now belongs to an unrelated live process that started at another time', () => {
    const dir = stateDir();
    const other = sleeper();
    const lockFile = path.join(dir, LOCK_FILE);
    writeFileSync(lockFile, JSON.stringify({ pid: other.pid, boot_id: systemProbe.bootId(), start_time: '1', instance: 'old' }));
    const lock = StateLock.acquire(dir, 'new');
    locks.push(lock);
    expect(lock.staleOwner).toBe(other.pid);
    expect(lock.staleWhy).toContain('another process');
    const held = JSON.parse(readFileSync(lockFile, 'utf8')) as { pid: number; start_time?: string; boot_id?: string };
    expect(held.pid).toBe(process.pid);
    expect(held.start_time).toBe(systemProbe.startTime(process.pid));
  });

  it('takes over a lock taken before the machine last booted, even though its pid is alive', () => {
    const dir = stateDir();
    const other = sleeper();
    writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: other.pid, boot_id: 'another-boot', start_time: systemProbe.startTime(other.pid!) }));
    const lock = StateLock.acquire(dir, 'new');
    locks.push(lock);
    expect(lock.staleWhy).toContain('booted');
  });

  it('refuses a lock held by a live daemon with an error that says what to do', async () => {
    const dir = stateDir();
    const holder = await contender(dir, { HOLD_MS: '30000' });
    expect(holder.won).toBe(true);
    let err: unknown;
    try {
      locks.push(StateLock.acquire(dir, 'second'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StateDirLockedError);
    expect((err as Error).message).toContain(`pid ${holder.pid}`);
    expect((err as Error).message).toMatch(/Give each daemon its own state_dir/);
  });

  it('gives one winner when several daemons take over the same stale lock at once', async () => {
    const dir = stateDir();
    const gone = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await new Promise((r) => gone.once('exit', r));
    writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: gone.pid, boot_id: systemProbe.bootId(), start_time: '1' }));
    // Each judges the lock stale, then pauses: all of them try to take it over together.
    const verdicts = await Promise.all([1, 2, 3, 4].map(() => contender(dir, { PAUSE_MS: '1500', HOLD_MS: '4000' })));
    const winners = verdicts.filter((v) => v.won);
    expect(winners).toHaveLength(1);
    for (const lost of verdicts.filter((v) => !v.won)) expect(lost.error).toContain(`pid ${winners[0]?.pid}`);
    const held = JSON.parse(readFileSync(path.join(dir, LOCK_FILE), 'utf8')) as { pid: number };
    expect(held.pid).toBe(winners[0]?.pid);
  });
});

describe('who owns a lock', () => {
  const probe = (over: Partial<ProcessProbe>): ProcessProbe => ({
    bootId: () => 'boot-1', startTime: () => undefined, signal: () => 'alive', selfPid: 1000, ...over,
  });

  it('does not take EPERM for proof of life when the start time cannot be read', () => {
    const status = ownerStatus({ pid: 42, boot_id: 'boot-1', start_time: '777' }, probe({ signal: () => 'eperm' }));
    expect(status).toEqual({ alive: false, why: expect.stringContaining('EPERM') });
  });

  it('believes a process of another user whose start time still matches', () => {
    expect(ownerStatus({ pid: 42, boot_id: 'boot-1', start_time: '777' }, probe({ signal: () => 'eperm', startTime: () => '777' }))).toEqual({ alive: true });
  });

  it('treats its own pid as a previous run and a vanished pid as gone', () => {
    expect(ownerStatus({ pid: 1000 }, probe({})).alive).toBe(false);
    expect(ownerStatus({ pid: 42 }, probe({ signal: () => 'gone' })).alive).toBe(false);
    // A lock of an older version (pid only) naming a live process is trusted.
    expect(ownerStatus({ pid: 42 }, probe({})).alive).toBe(true);
  });
});
