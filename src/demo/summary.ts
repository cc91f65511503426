/** The demo's closing report: what it counts, and how it reads for people (and CI). */
import { reduction, seconds } from './view.js';

/** The ping interval bounds the demo configures its daemon with (short, so the interval is seen to move). */
export const MIN_INTERVAL_MS = 1_000;
export const MAX_INTERVAL_MS = 8_000;

export interface DemoSummary {
  elapsedMs: number;
  workers: number;
  nats: string;
  /** Beats the simulated workers sent. */
  beatsSent: number;
  /** Beats the daemon accepted. */
  beatsIn: number;
  /** Pings the receiver accepted. */
  pingsOut: number;
  /** Sum of `beats` over the pings the receiver accepted. */
  beatsReported: number;
  /** Pings the receiver refused (expected: 0). */
  pingsRejected: number;
  intervalMs: number;
  /** What the receiver saw, by `type.change`. */
  transitions: Record<string, number>;
}

/** The closing report, for people (and for CI, which looks for "pings received by the platform"). */
export function formatSummary(s: DemoSummary): string {
  const t = s.transitions;
  const n = (k: string) => t[k] ?? 0;
  const workerChanges = ['appeared', 'restarted', 'draining', 'stopped', 'lost', 'returned']
    .map((c) => `${c} ${n(`worker.${c}`)}`)
    .join(', ');
  const lines = [
    '',
    `hbagg demo summary (${seconds(s.elapsedMs)}, ${s.workers} simulated workers, nats ${s.nats})`,
    `  beats sent by the workers        ${s.beatsSent}`,
    `  beats accepted by the daemon     ${s.beatsIn}`,
    `  pings received by the platform:  ${s.pingsOut}`,
    `  reduction (beats in / pings out) ${reduction(s.beatsIn, s.pingsOut)}`,
    `  beats reported in those pings    ${s.beatsReported}`,
    `  ping interval at the end         ${s.intervalMs} ms (min ${MIN_INTERVAL_MS}, max ${MAX_INTERVAL_MS})`,
    `  worker transitions the platform saw: ${workerChanges}`,
    `  node: ${n('node.final') > 0 ? 'final ping received, lease released cleanly' : 'no final ping seen'}` +
      (s.pingsRejected > 0 ? `; ${s.pingsRejected} pings REJECTED by the receiver` : ''),
    '',
  ];
  return lines.join('\n');
}
