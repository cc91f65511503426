/**
 * A state directory the daemon cannot use, said the way config errors are
 * said: what failed, where, and what to do. Node's own text ("EACCES:
 * permission denied, mkdir './state'") names a syscall, not a setting.
 */
import path from 'node:path';

export class StateDirError extends Error {
  override readonly name = 'StateDirError';

  constructor(
    readonly dir: string,
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

const WHAT: Record<string, string> = {
  mkdir: 'cannot create the directory',
  open: 'cannot open a file in it',
  write: 'cannot write to it',
  fsync: 'cannot flush a write to disk in it',
  rename: 'cannot replace a file in it',
  unlink: 'cannot remove a file in it',
  scandir: 'cannot list it',
  stat: 'cannot inspect it',
};

const FIX = 'set state_dir (HBAGG_STATE_DIR) to a directory it can write';

/** Why, and what to do, per errno; anything else keeps Node's message. */
function whyAndFix(code: string | undefined): [why: string, fix: string] {
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return ['permission denied', `Give the user running hbagg write access to it, or ${FIX}.`];
    case 'EROFS':
      return ['the file system is read-only', `Mount it read-write, or ${FIX} (systemd: list it in ReadWritePaths= or use StateDirectory=).`];
    case 'ENOSPC':
    case 'EDQUOT':
      return ['no space left on the device (or quota exceeded)', 'Free space on that file system, or move state_dir (HBAGG_STATE_DIR) to one with room.'];
    case 'ENOTDIR':
    case 'EEXIST':
      return ['a part of the path is a file, not a directory', `Remove or rename that file, or ${FIX}.`];
    case 'ENOENT':
      return ['a part of the path does not exist', `Create it, or ${FIX}.`];
    case 'EIO':
      return ['an input/output error (a failing disk?)', 'Check the disk (dmesg), or move state_dir (HBAGG_STATE_DIR) to a healthy one.'];
    default:
      return [code ?? 'unknown error', `Check the directory, or ${FIX}.`];
  }
}

/** Wraps an fs error met while opening `dir`; other errors are returned unchanged. */
export function describeStateDirError(dir: string, err: unknown): Error {
  const e = err as NodeJS.ErrnoException | undefined;
  if (e === undefined || typeof e.code !== 'string' || typeof e.syscall !== 'string') return err instanceof Error ? err : new Error(String(err));
  const [why, fix] = whyAndFix(e.code);
  const what = WHAT[e.syscall] ?? `${e.syscall} failed`;
  const file = e.path !== undefined && path.resolve(e.path) !== path.resolve(dir) ? ` (${e.path})` : '';
  return new StateDirError(dir, `state_dir ${JSON.stringify(dir)}: ${what}${file}: ${why}. ${fix}`, e.code);
}
