/**
 * Is the journal file this process writes still the one at its path? When
 * the state directory is deleted (or replaced) under a running daemon, its
 * open descriptor points at an unlinked inode: every write "succeeds" and no
 * restart will ever read it. Comparing fstat of the descriptor with stat of
 * the path (device and inode, and a link count of zero) tells.
 */
import { stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';

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
