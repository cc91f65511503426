/**
 * What the demo shows. `renderScreen` and `renderLine` are pure (a snapshot
 * in, text out); `Screen` is the thin edge that writes them: redrawn in place
 * on a terminal, plain periodic lines otherwise (CI logs, pipes).
 */
import type { WorkerState } from '../protocol/schemas.js';

export type SimPhase = 'starting' | 'running' | 'draining' | 'stopped' | 'crashed';

export interface SimWorkerView {
  id: string;
  instance: string;
  phase: SimPhase;
  status: 'idle' | 'busy';
  inflight: number;
  beats: number;
}

export interface DemoSnapshot {
  elapsedMs: number;
  nats: string;
  receiverUrl: string;
  daemonUrl: string;
  /** The daemon's registry, by state. */
  workers: Record<WorkerState, number>;
  /** Beats the daemon accepted. */
  beatsIn: number;
  /** Pings the receiver accepted. */
  pingsOut: number;
  /** The daemon's current quiet gap between pings. */
  intervalMs: number;
  minIntervalMs: number;
  maxIntervalMs: number;
  sims: SimWorkerView[];
  /** Recent receiver events, formatted, oldest first. */
  recent: string[];
  /** True once the demo is stopping (the last views). */
  ending?: boolean;
}

export function reduction(beats: number, pings: number): string {
  return pings === 0 ? '-' : `${(beats / pings).toFixed(1)}x`;
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

function byState(w: Record<WorkerState, number>): string {
  return `active ${w.active}  draining ${w.draining}  stopped ${w.stopped}  lost ${w.lost}`;
}

/** The full-screen view, one string per line. */
export function renderScreen(s: DemoSnapshot, width = 100): string[] {
  // Beats fill the bar; pings get their share of it, so the reduction is visible at a glance.
  const bar = (n: number) => '#'.repeat(n === 0 ? 0 : Math.max(1, Math.min(40, Math.round(n))));
  const lines = [
    `hbagg demo  ${seconds(s.elapsedMs)}`,
    `  nats ${s.nats}   daemon ${s.daemonUrl}   platform ${s.receiverUrl}`,
    '',
    `workers (daemon)   ${byState(s.workers)}`,
    `beats in           ${String(s.beatsIn).padStart(7)}   ${bar(s.beatsIn > 0 ? 40 : 0)}`,
    `pings out          ${String(s.pingsOut).padStart(7)}   ${bar(s.beatsIn > 0 ? (40 * s.pingsOut) / s.beatsIn : 0)}`,
    `reduction          ${reduction(s.beatsIn, s.pingsOut).padStart(7)}   (beats in / pings out)`,
    `ping interval      ${String(s.intervalMs).padStart(4)} ms   (${s.minIntervalMs}..${s.maxIntervalMs}: doubles while quiet, resets on a change)`,
    '',
    'simulated workers',
  ];
  for (const w of s.sims) {
    const tasks = w.phase === 'running' || w.phase === 'draining' ? `${w.status.padEnd(4)} inflight ${w.inflight}` : '';
    lines.push(`  ${w.id.padEnd(12)} ${w.instance.slice(0, 8).padEnd(8)}  ${w.phase.padEnd(8)}  ${tasks}`.trimEnd());
  }
  lines.push('', 'what the platform learned (latest last)');
  const recent = s.recent.slice(-8);
  for (const e of recent) lines.push(`  ${e}`);
  for (let i = recent.length; i < 8; i++) lines.push('');
  lines.push('', s.ending ? 'stopped' : 'Ctrl-C to stop');
  return lines.map((l) => (l.length > width ? l.slice(0, width - 1) : l));
}

/** One plain line, for when stdout is not a terminal. */
export function renderLine(s: DemoSnapshot): string {
  return (
    `[${seconds(s.elapsedMs).padStart(6)}] workers ${byState(s.workers)} | beats in ${s.beatsIn} | ` +
    `pings out ${s.pingsOut} | reduction ${reduction(s.beatsIn, s.pingsOut)} | interval ${s.intervalMs} ms`
  );
}

export interface ScreenOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Writes snapshots: in place on a TTY, one line per `lineEveryMs` otherwise. */
export class Screen {
  private drawn = 0;
  private lastLineAt = -Infinity;
  readonly tty: boolean;

  constructor(
    private readonly out: ScreenOutput,
    private readonly lineEveryMs = 2_000,
  ) {
    this.tty = out.isTTY === true;
    if (this.tty) out.write('\x1b[?25l'); // hide the cursor while redrawing
  }

  show(s: DemoSnapshot): void {
    if (!this.tty) {
      if (s.elapsedMs - this.lastLineAt < this.lineEveryMs) return;
      this.lastLineAt = s.elapsedMs;
      this.out.write(`${renderLine(s)}\n`);
      return;
    }
    const columns = this.out.columns ?? 0;
    const lines = renderScreen(s, columns >= 20 ? columns : 100);
    const up = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    this.out.write(`${up}\r\x1b[0J${lines.join('\n')}\n`);
    this.drawn = lines.length;
  }

  /** An event as it happens (plain mode only: the TTY view shows the recent ones). */
  event(elapsedMs: number, text: string): void {
    if (!this.tty) this.out.write(`[${seconds(elapsedMs).padStart(6)}]   ${text}\n`);
  }

  /** Leaves the last view on screen and gives the cursor back. */
  end(): void {
    if (this.tty) this.out.write('\x1b[?25h');
  }
}
