/**
 * One daemon per state directory. The lock is a file created with O_EXCL
 * (`wx`) holding the owner's pid; a lock left by a dead process (kill -9, a
 * crash, a reboot) is taken over, a live owner is a clear error. Node has no
 * flock, and O_EXCL is atomic on local file systems, which is where a state
 * directory belongs.
 *
 * Known gap: two daemons that find the same stale lock in the same instant
 * may both take it over (each removes it, one of them removes the other's
 * fresh lock). Starting two daemons on one directory at once is the mistake
 * the lock reports, not a supported race.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const LOCK_FILE = 'hbagg.lock';

interface LockOwner {
  pid: number;
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
  ) {}

  /** Takes the lock on `dir` (which must exist) or throws `StateDirLockedError`. */
  static acquire(dir: string, instance: string): StateLock {
    const key = path.resolve(dir);
    const file = path.join(key, LOCK_FILE);
    if (heldHere.has(key)) throw new StateDirLockedError(dir, process.pid, file);
    const owner: LockOwner = { pid: process.pid, host: os.hostname(), instance, since: new Date().toISOString() };
    const token = `${JSON.stringify(owner)}\n`;
    let stale: number | undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        const fd = openSync(file, 'wx', 0o644);
        try {
          writeSync(fd, token);
        } finally {
          closeSync(fd);
        }
        heldHere.add(key);
        return new StateLock(file, key, token, stale);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const other = readOwner(file);
      if (other !== undefined && isAlive(other.pid)) throw new StateDirLockedError(dir, other.pid, file);
      if (attempt >= 2) throw new StateDirLockedError(dir, other?.pid ?? -1, file);
      stale = other?.pid;
      // Stale: its owner is gone (or the file is empty or unreadable, a crash between create and write).
      try {
        unlinkSync(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
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

function readOwner(file: string): LockOwner | undefined {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockOwner>;
    return typeof parsed.pid === 'number' && Number.isInteger(parsed.pid) && parsed.pid > 0 ? (parsed as LockOwner) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether `pid` is a running process other than this one. Our own pid in a
 * lock we do not hold is a previous run of a container whose entry point is
 * always pid 1, so it counts as dead.
 */
function isAlive(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, owned by another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
