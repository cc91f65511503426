/**
 * Plays the storyline of `script.ts` against the simulated workers: every
 * 100 ms it starts the acts that are due, each on its own, and keeps track of
 * the ones in flight so the demo's stop can wait for them.
 */
import { actsOfCycle, type Act } from './script.js';
import type { SimWorker } from './sim-worker.js';

export interface DirectorDeps {
  sims: readonly SimWorker[];
  /** Milliseconds since the demo started (the script's time). */
  elapsed(): number;
  /** False once the demo is stopping: no act starts, and a worker shut down is not restarted. */
  running(): boolean;
  /** Shows a scripted act, like an event. */
  note(text: string): void;
}

const TICK_MS = 100;
/** A worker shut down gracefully comes back after this. */
const RESTART_AFTER_MS = 1_000;

export class Director {
  private timer: NodeJS.Timeout | undefined;
  private cycle = 0;
  private pending: Act[] = [];
  private readonly acts = new Set<Promise<void>>();

  constructor(private readonly d: DirectorDeps) {}

  start(): void {
    this.timer ??= setInterval(() => this.direct(), TICK_MS);
  }

  /** No new act starts; those in flight go on (see `settled`). */
  stop(): void {
    clearInterval(this.timer);
  }

  /** Resolves once the acts in flight are done. */
  async settled(): Promise<void> {
    await Promise.all(this.acts);
  }

  /** Runs the acts that are due; plans the next cycle when one ends. */
  private direct(): void {
    if (!this.d.running()) return;
    const now = this.d.elapsed();
    while (true) {
      if (this.pending.length === 0) this.pending = actsOfCycle(this.cycle++, this.d.sims.length);
      const next = this.pending[0];
      if (next === undefined || next.atMs > now) return;
      this.pending.shift();
      const p = this.perform(next).catch(() => undefined);
      this.acts.add(p);
      void p.finally(() => this.acts.delete(p));
    }
  }

  private async perform(act: Act): Promise<void> {
    const sim = this.d.sims[act.worker];
    if (!sim) return;
    const note = (text: string) => this.d.note(`${sim.view().id} ${text}`);
    if (act.kind === 'crash') {
      if (sim.phase !== 'running') return;
      note('crashes: it goes silent, no Leave');
      await sim.crash();
    } else if (act.kind === 'restart') {
      if (sim.phase !== 'crashed') return;
      note('restarts as a new instance');
      await sim.start();
    } else {
      if (sim.phase !== 'running') return;
      note('gets SIGTERM: draining, finishing its tasks, then stopped');
      await sim.shutdown('SIGTERM');
      await new Promise((r) => setTimeout(r, RESTART_AFTER_MS));
      if (!this.d.running()) return;
      note('restarts as a new instance');
      await sim.start();
    }
  }
}
