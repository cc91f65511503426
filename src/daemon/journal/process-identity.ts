/**
 * Who owns a lock, told apart from whoever now wears its pid. A pid alone
 * says little after a power loss: the old number may belong to `sleep` now,
 * and under systemd's DynamicUser `kill(pid, 0)` answers EPERM for a process
 * of another user, which is no proof that our daemon lives. So a lock records
 * the boot id and the process start time (Linux: /proc/sys/kernel/random/boot_id
 * and field 22 of /proc/<pid>/stat), and an owner is alive only when both
 * still match. Elsewhere (no /proc) the pid check is all there is.
 */
import { readFileSync } from 'node:fs';

export interface ProcessIdentity {
  pid: number;
  /** This boot of the machine; absent without /proc. */
  boot_id?: string;
  /** Clock ticks since boot when the process started; absent without /proc. */
  start_time?: string;
}

/** What the machine says about a pid now: the seams of `ownerStatus`, replaceable in tests. */
export interface ProcessProbe {
  bootId(): string | undefined;
  /** The start time of `pid`, or undefined when it cannot be read (gone, hidden, no /proc). */
  startTime(pid: number): string | undefined;
  /** `kill(pid, 0)`: 'alive', 'gone' (ESRCH) or 'eperm' (exists for another user, or hidden). */
  signal(pid: number): 'alive' | 'gone' | 'eperm';
  readonly selfPid: number;
}

export type OwnerStatus = { alive: true } | { alive: false; why: string };

export const systemProbe: ProcessProbe = {
  bootId: () => readText('/proc/sys/kernel/random/boot_id'),
  startTime: (pid) => {
    const stat = readText(`/proc/${pid}/stat`);
    if (stat === undefined) return undefined;
    // Field 2 (the command) is in parentheses and may hold spaces: count from after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19]; // field 22: rest[0] is field 3
  },
  signal: (pid) => {
    try {
      process.kill(pid, 0);
      return 'alive';
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM' ? 'eperm' : 'gone';
    }
  },
  selfPid: process.pid,
};

/** This process, as a lock records it. */
export function selfIdentity(probe: ProcessProbe = systemProbe): ProcessIdentity {
  return { pid: probe.selfPid, boot_id: probe.bootId(), start_time: probe.startTime(probe.selfPid) };
}

/** Pure given the probe: is the process a lock names still the one that wrote it? */
export function ownerStatus(owner: ProcessIdentity, probe: ProcessProbe = systemProbe): OwnerStatus {
  // Our own pid in a lock we do not hold: a previous run of a container whose entry point is always pid 1.
  if (owner.pid === probe.selfPid) return { alive: false, why: 'it names this process (a previous run with the same pid)' };
  const boot = probe.bootId();
  if (owner.boot_id !== undefined && boot !== undefined && owner.boot_id !== boot) {
    return { alive: false, why: 'it was taken before the machine last booted' };
  }
  const signal = probe.signal(owner.pid);
  if (signal === 'gone') return { alive: false, why: `pid ${owner.pid} is not running` };
  const started = probe.startTime(owner.pid);
  if (owner.start_time !== undefined && started !== undefined) {
    return started === owner.start_time
      ? { alive: true }
      : { alive: false, why: `pid ${owner.pid} now belongs to another process (started at tick ${started}, not ${owner.start_time})` };
  }
  // EPERM with nothing to compare: a process we may not signal and cannot see. A daemon sharing our state dir
  // runs as its owner, so it is not ours; a lock of an older version (no start time) is trusted, to be safe.
  if (signal === 'eperm' && owner.start_time !== undefined) {
    return { alive: false, why: `pid ${owner.pid} belongs to another user (EPERM) and its start time cannot be read` };
  }
  return { alive: true };
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}
