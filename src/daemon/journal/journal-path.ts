/**
 * Is the journal file this process writes still the one at its path? When
 * the state directory is deleted (or replaced) under a running daemon, its
 * open descriptor points at an unlinked inode: every write "succeeds" and no
 * restart will ever read it. Comparing fstat of the descriptor with stat of
 * the path (device and inode, and a link count of zero) tells.
 */
import { mkdir, stat, type FileHandle } from 'node:fs/promises';
import type { StateLock } from './state-lock.js';

/** Why `fh` is not the file at `file` any more, or undefined when it is. */
export async function detachedFrom(fh: FileHandle | undefined, file: string): Promise<string | undefined> {
  if (fh === undefined) return undefined;
  const open = await fh.stat();
  if (open.nlink === 0) return `the open journal was unlinked (was ${file} or its directory deleted?)`;
  let onDisk;
  try {
    onDisk = await stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `${file} no longer exists` : `cannot stat ${file}: ${(err as Error).message}`;
  }
  if (onDisk.dev !== open.dev || onDisk.ino !== open.ino) return `${file} was replaced by another file`;
  return undefined;
}

/** Why the journal is not where a restart would look: its file (see `detachedFrom`), or its lock gone. */
export async function whyDetached(
  file: { detached(): Promise<string | undefined> },
  lock: StateLock | undefined,
): Promise<string | undefined> {
  const why = await file.detached();
  if (why !== undefined) return why;
  if (lock && !(await lock.holds())) return `the lock ${lock.file} is gone or no longer ours`;
  return undefined;
}

/** Puts the state directory and its lock back before the journal is rewritten there. */
export async function restoreStateDir(dir: string, lock: StateLock | undefined): Promise<void> {
  await mkdir(dir, { recursive: true });
  if (lock && !lock.retake()) {
    throw new Error(`state dir ${dir} was taken by another process while this daemon's journal was away; nothing is written there`);
  }
}
