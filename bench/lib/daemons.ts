/** Starting the real daemon in a bench child process (bench/daemon-host.ts). */
import { startChild, type BenchChild } from './child.js';
import type { BenchDaemonOptions } from './daemon-config.js';

export interface DaemonStats {
  rss: number;
  heapUsed: number;
  cpuUser: number;
  cpuSystem: number;
  size: number;
  accepted: number;
  states: Record<string, number>;
}

export async function startDaemon(o: BenchDaemonOptions, nodeFlags: string[] = []): Promise<BenchChild> {
  const child = startChild('daemon-host.ts', o, nodeFlags);
  try {
    await Promise.race([
      child.next('ready', 30_000),
      child.next<{ error: string }>('failed', 30_000).then((f) => {
        throw new Error(f.error);
      }),
    ]);
  } catch (err) {
    await child.kill();
    throw err;
  }
  return child;
}

export async function stopDaemon(child: BenchChild): Promise<{ stopMs: number }> {
  try {
    const r = await child.call<{ stopMs: number }>('stop', undefined, 60_000);
    await child.call('exit').catch(() => undefined);
    await Promise.race([child.exited, new Promise((r2) => setTimeout(r2, 2_000))]);
    return r;
  } finally {
    await child.kill();
  }
}

/** Polls the daemon until `ok(stats)` or the deadline. */
export async function waitForStats(child: BenchChild, ok: (s: DaemonStats) => boolean, timeoutMs: number, what: string): Promise<DaemonStats> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await child.call<DaemonStats>('stats');
    if (ok(s)) return s;
    if (Date.now() > deadline) throw new Error(`daemon: ${what} not reached within ${timeoutMs} ms (size ${s.size}, accepted ${s.accepted})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
