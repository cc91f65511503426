/**
 * The demo's storyline, pure: which simulated worker does what, and when.
 * Each cycle packs its transitions into the first seconds, then stays quiet,
 * so the ping interval visibly resets and grows back to its maximum:
 *
 *   +2 s  worker A shuts down gracefully (draining, tasks finish, stopped), then restarts
 *   +5 s  worker B crashes: it just goes silent, and the daemon reports it lost
 *   +9 s  worker B comes back as a new instance
 *   ...   quiet until the next cycle
 */
export type ActKind = 'shutdown' | 'crash' | 'restart';

export interface Act {
  /** From the start of the demo. */
  atMs: number;
  kind: ActKind;
  /** Index of the simulated worker. */
  worker: number;
}

export const CYCLE_MS = 24_000;

/** The acts of cycle `cycle` (0, 1, ...) for `workers` simulated workers, in time order. */
export function actsOfCycle(cycle: number, workers: number): Act[] {
  if (workers < 1) return [];
  const base = cycle * CYCLE_MS;
  const a = (2 * cycle) % workers;
  const acts: Act[] = [{ atMs: base + 2_000, kind: 'shutdown', worker: a }];
  if (workers >= 2) {
    const b = (2 * cycle + 1) % workers;
    acts.push({ atMs: base + 5_000, kind: 'crash', worker: b }, { atMs: base + 9_000, kind: 'restart', worker: b });
  }
  return acts;
}
