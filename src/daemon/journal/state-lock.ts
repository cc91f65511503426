/**
 * One daemon per state directory. The lock file holds its owner's pid, boot
 * id and process start time (`process-identity.ts`), so a lock left by a dead
 * process (kill -9, a crash, a power loss after which the pid went to
 * someone else) is taken over, and a live owner is a clear error.
 *
 * Creating is atomic with its content: the owner is written to a private
 * temporary file that is then hard-linked to the lock name (link fails if the
 * name exists), so nobody ever reads a half-written lock. Taking over a stale
 * lock happens under a second, short-lived O_EXCL file (`hbagg.lock.takeover`):
 * inside it the lock is read again and removed only if it is still the stale
 * one that was judged, so two daemons finding one stale lock at once end with
 * one winner and one clear error. A takeover file older than
 * `TAKEOVER_STALE_MS` is left by a crash mid-takeover and is removed.
 * Node has no flock, and link and O_EXCL are atomic on local file systems,
 * which is where a state directory belongs.
 */
import { closeSync, linkSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ownerStatus, selfIdentity, systemProbe, type ProcessIdentity, type ProcessProbe } from './process-identity.js';

export const LOCK_FILE = 'hbagg.lock';
const TAKEOVER_SUFFIX = '.takeover';
/** A takeover takes microseconds; one this old was left by a crash. */
const TAKEOVER_STALE_MS = 10_000;
/** How long a contender waits for another's takeover to finish. */
const TAKEOVER_WAIT_MS = 2_000;

interface LockOwner extends ProcessIdentity {
  host?: string;
  instance?: string;
  since?: string;
}

/** Another live daemon holds the state directory. */
export class StateDirLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly pid: number,
    readonly lockFile: string,
  ) {
    super(
      `state dir ${JSON.stringify(dir)} is in use by another hbagg (pid ${pid}): two daemons must not share one state dir. ` +
        `Give each daemon its own state_dir, or stop pid ${pid}; if no such daemon runs, delete ${lockFile}.`,
    );
    this.name = 'StateDirLockedError';
  }
}

export interface StateLockOptions {
  /** What the machine says about pids (tests replace it). */
  probe?: ProcessProbe;
  /** Test seam: runs after a stale lock is judged, before it is taken over. */
  beforeTakeover?(): void;
}

/** Directories locked by this process: a second daemon in one process (tests) must fail too. */
const heldHere = new Set<string>();

export class StateLock {
  private released = false;

  private constructor(
    readonly file: string,
    private readonly key: string,
    private readonly token: string,
    /** The pid of a dead owner whose stale lock was taken over (for the log). */
    readonly staleOwner: number | undefined,
    /** Why that lock was judged stale. */
    readonly staleWhy: string | undefined,
  ) {}

  /** Takes the lock on `dir` (which must exist) or throws `StateDirLockedError`. */
  static acquire(dir: string, instance: string, opts: StateLockOptions = {}): StateLock {
    const probe = opts.probe ?? systemProbe;
    const key = path.resolve(dir);
    const file = path.join(key, LOCK_FILE);
    if (heldHere.has(key)) throw new StateDirLockedError(dir, process.pid, file);
    const owner: LockOwner = { ...selfIdentity(probe), host: os.hostname(), instance, since: new Date().toISOString() };
    const token = `${JSON.stringify(owner)}\n`;
    for (let attempt = 0; ; attempt++) {
      if (publish(file, token)) {
        heldHere.add(key);
        return new StateLock(file, key, token, undefined, undefined);
      }
      const raw = readRaw(file);
      if (raw === undefined) continue; // removed since: try again
      const other = parseOwner(raw);
      const status = other === undefined ? { alive: false as const, why: 'the lock file is empty or unreadable' } : ownerStatus(other, probe);
      if (status.alive || attempt >= 5) throw new StateDirLockedError(dir, other?.pid ?? -1, file);
      opts.beforeTakeover?.();
      if (takeOver(file, raw, token)) {
        heldHere.add(key);
        return new StateLock(file, key, token, other?.pid, status.why);
      }
    }
  }

  /**
   * Whether the lock file on disk is still ours (false when the directory or
   * the file was removed). Asynchronous: it runs before every journal commit,
   * and a hung disk must not block the event loop.
   */
  async holds(): Promise<boolean> {
    if (this.released) return false;
    return (await readFile(this.file, 'utf8').catch(() => undefined)) === this.token;
  }

  /**
   * Writes the lock again after its file was removed (the state directory
   * deleted under a running daemon). False when another process holds it now.
   */
  retake(): boolean {
    if (this.released) return false;
    return readRaw(this.file) === this.token || publish(this.file, this.token);
  }

  /** Removes the lock if it is still ours. Safe to call twice. */
  release(): void {
    if (this.released) return;
    this.released = true;
    heldHere.delete(this.key);
    try {
      if (readFileSync(this.file, 'utf8') === this.token) unlinkSync(this.file);
    } catch {
      // Already gone: nothing to release.
    }
  }
}

/** Creates `file` holding `token`, atomically; false if it exists. */
function publish(file: string, token: string): boolean {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const fd = openSync(tmp, 'wx', 0o644);
  try {
    writeSync(fd, token);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkQuietly(tmp);
  }
}

/** Replaces the lock with ours if it still holds `stale`, one contender at a time. */
function takeOver(file: string, stale: string, token: string): boolean {
  const guard = `${file}${TAKEOVER_SUFFIX}`;
  const deadline = Date.now() + TAKEOVER_WAIT_MS;
  for (;;) {
    try {
      closeSync(openSync(guard, 'wx', 0o644));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (ageMs(guard) > TAKEOVER_STALE_MS) unlinkQuietly(guard);
    else if (Date.now() > deadline) return false;
    else sleepSync(10);
  }
  try {
    // Someone else took it over (or removed it) since we judged it: judge again.
    if (readRaw(file) !== stale) return false;
    unlinkQuietly(file);
    return publish(file, token);
  } finally {
    unlinkQuietly(guard);
  }
}

function readRaw(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function parseOwner(raw: string): LockOwner | undefined {
  try {
    const parsed = JSON.parse(raw) as Partial<LockOwner>;
    if (typeof parsed.pid !== 'number' || !Number.isInteger(parsed.pid) || parsed.pid <= 0) return undefined;
    return {
      pid: parsed.pid,
      boot_id: typeof parsed.boot_id === 'string' ? parsed.boot_id : undefined,
      start_time: typeof parsed.start_time === 'string' ? parsed.start_time : undefined,
    };
  } catch {
    return undefined;
  }
}

function ageMs(file: string): number {
  try {
    return Date.now() - statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // gone already
  }
}

/** Acquiring is synchronous (it runs once, at start); a contender waits a few ms without a timer. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
