/**
 * Section 5, stop time: `Daemon.stop()` timed inside the daemon process, with
 * 1,000 tracked workers, against a healthy platform (answers 200 at once)
 * and a hanging one (accepts the connection, never answers).
 */
import { connect } from '@nats-io/transport-node';
import { beatJson, newInstance, workerId } from './lib/beats.js';
import { startDaemon, stopDaemon, waitForStats } from './lib/daemons.js';
import { startBenchPlatform } from './lib/platform.js';
import type { Figure, SectionResult } from './lib/report.js';
import { median, sig } from '../testing/stats.js';

export interface StopOptions {
  natsUrl: string;
  healthyRuns: number;
  hangingRuns: number;
  /** shutdown_timeout_ms for the hanging runs (default 10000). */
  hangingShutdownMs?: number;
}

const WORKERS = 1000;

async function once(natsUrl: string, run: number, hanging: boolean, shutdownMs: number | undefined): Promise<{ stopMs: number; finalSeen: boolean; finalEntries: number }> {
  const platform = await startBenchPlatform();
  const prefix = `bs${hanging ? 'h' : 'ok'}${run}`;
  const daemon = await startDaemon({ natsUrl, prefix, platformUrl: platform.url, shutdownTimeoutMs: shutdownMs, nodeId: 'bench-stop' });
  try {
    const nc = await connect({ servers: natsUrl, name: 'bench-stop' });
    const instance = newInstance();
    for (let i = 0; i < WORKERS; i++) nc.publish(`${prefix}.beat.${workerId(i)}`, beatJson(workerId(i), instance, 1, 60_000));
    await nc.flush();
    await nc.close();
    await waitForStats(daemon, (s) => s.size === WORKERS, 10_000, `${WORKERS} workers`);
    if (hanging) {
      platform.hang(true);
      // Wait for a ping to be stuck in flight, the hard case.
      const n = platform.requests.length;
      const deadline = Date.now() + 5_000;
      while (platform.requests.length === n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 200));
    } else {
      await new Promise((r) => setTimeout(r, 300));
    }
    const { stopMs } = await stopDaemon(daemon);
    const final = platform.requests.find((r) => r.final);
    return { stopMs, finalSeen: final !== undefined, finalEntries: final?.entries ?? 0 };
  } finally {
    await stopDaemon(daemon).catch(() => undefined);
    await platform.close();
  }
}

export async function benchStop(o: StopOptions): Promise<SectionResult> {
  const healthy = [];
  for (let i = 0; i < o.healthyRuns; i++) healthy.push(await once(o.natsUrl, i, false, undefined));
  const hanging = [];
  for (let i = 0; i < o.hangingRuns; i++) hanging.push(await once(o.natsUrl, i, true, o.hangingShutdownMs));
  const limit = o.hangingShutdownMs ?? 10_000;
  const hMed = median(hanging.map((r) => r.stopMs));
  const figures: Figure[] = [
    {
      section: 'stop', name: 'stop, healthy platform', value: sig(median(healthy.map((r) => r.stopMs))), unit: 'ms',
      how: `Daemon.stop() timed in the daemon process with ${WORKERS} workers tracked (drain NATS, final ping, close HTTP); median of ${o.healthyRuns}; max ${sig(Math.max(...healthy.map((r) => r.stopMs)))} ms; final ping received in ${healthy.filter((r) => r.finalSeen).length}/${o.healthyRuns} runs`,
    },
    {
      section: 'stop', name: 'stop, hanging platform', value: sig(hMed), unit: 'ms', target: `<= shutdown_timeout_ms (${limit})`, ok: Math.max(...hanging.map((r) => r.stopMs)) <= limit,
      how: `same, with a ping in flight to a platform that never answers, shutdown_timeout_ms ${limit}${o.hangingShutdownMs ? '' : ' (the default)'}; median of ${o.hangingRuns}; max ${sig(Math.max(...hanging.map((r) => r.stopMs)))} ms`,
    },
  ];
  return { figures, details: { workers: WORKERS, shutdown_timeout_ms_hanging: limit, healthy, hanging } };
}
