/**
 * Section 3, latency of state changes as the platform sees them, all clocks
 * read in this process (Date.now() when a leave is sent or a beat published,
 * the stub's arrival time of the first ping showing the new state):
 * - leave -> `draining`: leaves sent as NATS requests at random (Poisson) times;
 * - silence -> `lost`: workers beating at 1 Hz stop one by one; the error is
 *   the detection time minus the configured threshold max(3 * interval, lost_after_min).
 */
import { connect } from '@nats-io/transport-node';
import { beatJson, leaveJson, newInstance, workerId } from './lib/beats.js';
import { startDaemon, stopDaemon, waitForStats } from './lib/daemons.js';
import { startBenchPlatform } from './lib/platform.js';
import type { SectionResult } from './lib/report.js';
import { median, quantile, sig } from '../testing/stats.js';

export interface LatencyOptions {
  natsUrl: string;
  leaveRuns: number;
  leavesPerRun: number;
  leavesPerSec: number;
  lostWorkers: number;
  lostSpreadMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function leaveRun(natsUrl: string, run: number, n: number, perSec: number): Promise<{ toPlatform: number[]; reply: number[]; missing: number }> {
  const platform = await startBenchPlatform();
  const prefix = `blv${run}`;
  const daemon = await startDaemon({ natsUrl, prefix, platformUrl: platform.url, nodeId: 'bench-leave' });
  const nc = await connect({ servers: natsUrl, name: 'bench-leaves' });
  const sentAt = new Map<string, number>();
  const toPlatform: number[] = [];
  const reply: number[] = [];
  try {
    const instance = newInstance();
    for (let i = 0; i < n; i++) nc.publish(`${prefix}.beat.${workerId(i)}`, beatJson(workerId(i), instance, 1, 60_000));
    await nc.flush();
    await waitForStats(daemon, (s) => s.size === n, 10_000, `${n} workers`);
    await sleep(300);
    platform.onPing((body, at) => {
      for (const e of body.workers ?? []) {
        const t = e.state === 'draining' ? sentAt.get(e.worker) : undefined;
        if (t === undefined) continue;
        toPlatform.push(at - t);
        sentAt.delete(e.worker);
      }
    });
    const pending: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      await sleep(-Math.log(1 - Math.random()) * (1000 / perSec));
      const w = workerId(i);
      const t = Date.now();
      sentAt.set(w, t);
      pending.push(
        nc.request(`${prefix}.leave.${w}`, leaveJson(w, instance, 2, 'draining'), { timeout: 5_000 }).then(
          () => void reply.push(Date.now() - t),
          () => undefined,
        ),
      );
    }
    await Promise.all(pending);
    const deadline = Date.now() + 10_000;
    while (sentAt.size > 0 && Date.now() < deadline) await sleep(20);
    return { toPlatform, reply, missing: sentAt.size };
  } finally {
    platform.onPing(undefined);
    await nc.close();
    await stopDaemon(daemon);
    await platform.close();
  }
}

async function lostRun(natsUrl: string, k: number, spreadMs: number): Promise<{ errors: number[]; missing: number; thresholdMs: number }> {
  const intervalMs = 1000;
  const lostAfterMinMs = 3000;
  const thresholdMs = Math.max(3 * intervalMs, lostAfterMinMs);
  const platform = await startBenchPlatform();
  const prefix = 'blost';
  const daemon = await startDaemon({ natsUrl, prefix, platformUrl: platform.url, lostAfterMinMs, nodeId: 'bench-lost' });
  const nc = await connect({ servers: natsUrl, name: 'bench-lost' });
  const lastBeat = new Map<string, number>();
  const errors: number[] = [];
  try {
    const instance = newInstance();
    const start = Date.now();
    // Each worker beats once a second at its own random phase (a 5 ms loop, so beats are not
    // aligned with the daemon's 100 ms loss check) and stops for good at stopAt[i].
    const phase = Array.from({ length: k }, () => Math.random() * intervalMs);
    const stopAt = Array.from({ length: k }, (_, i) => start + 1_500 + (i * spreadMs) / k);
    const nextAt = phase.map((p) => start + p);
    const seq = new Array<number>(k).fill(0);
    const stopped = new Set<number>();
    platform.onPing((body, at) => {
      for (const e of body.workers ?? []) {
        const t = e.state === 'lost' ? lastBeat.get(e.worker) : undefined;
        if (t === undefined) continue;
        errors.push(at - t - thresholdMs);
        lastBeat.delete(e.worker);
      }
    });
    const deadline = start + 1_500 + spreadMs + thresholdMs + 10_000;
    while (Date.now() < deadline && (stopped.size < k || lastBeat.size > 0)) {
      const now = Date.now();
      for (let i = 0; i < k; i++) {
        if (stopped.has(i) || now < (nextAt[i] as number)) continue;
        if (now >= (stopAt[i] as number)) {
          stopped.add(i);
          continue;
        }
        const w = workerId(i);
        seq[i] = (seq[i] as number) + 1;
        nc.publish(`${prefix}.beat.${w}`, beatJson(w, instance, seq[i] as number, intervalMs));
        lastBeat.set(w, Date.now());
        nextAt[i] = (nextAt[i] as number) + intervalMs;
      }
      await sleep(5);
    }
    return { errors, missing: lastBeat.size, thresholdMs };
  } finally {
    platform.onPing(undefined);
    await nc.close();
    await stopDaemon(daemon);
    await platform.close();
  }
}

export async function benchLatency(o: LatencyOptions): Promise<SectionResult> {
  const toPlatform: number[] = [];
  const reply: number[] = [];
  const perRunP50: number[] = [];
  let missing = 0;
  for (let run = 0; run < o.leaveRuns; run++) {
    const r = await leaveRun(o.natsUrl, run, o.leavesPerRun, o.leavesPerSec);
    toPlatform.push(...r.toPlatform);
    reply.push(...r.reply);
    perRunP50.push(median(r.toPlatform));
    missing += r.missing;
  }
  const lost = await lostRun(o.natsUrl, o.lostWorkers, o.lostSpreadMs);
  const n = o.leaveRuns * o.leavesPerRun;
  const leaveHow = `${n} leaves (${o.leaveRuns} run(s) of ${o.leavesPerRun}, Poisson arrivals at ${o.leavesPerSec}/s, fresh daemon per run, default urgent_flush_ms 50); time from sending the NATS request to the stub receiving the first ping listing the worker as draining`;
  const early = lost.errors.filter((e) => e < 0).length;
  const lostHow = `${o.lostWorkers} workers beating at 1 Hz (random phases) stop one after another over ${o.lostSpreadMs / 1000} s; detection = stub arrival of the first ping listing the worker lost - the worker's last beat publish; error = detection - threshold (${lost.thresholdMs} ms = max(3 * 1000, lost_after_min_ms 3000))`;
  return {
    figures: [
      { section: 'latency', name: 'leave -> draining p50', value: sig(quantile(toPlatform, 0.5)), unit: 'ms', how: leaveHow },
      { section: 'latency', name: 'leave -> draining p99', value: sig(quantile(toPlatform, 0.99)), unit: 'ms', target: '<= 50 (urgent_flush_ms)', ok: quantile(toPlatform, 0.99) <= 50, how: `same samples; max ${sig(Math.max(...toPlatform))} ms; ${missing} never seen` },
      { section: 'latency', name: 'leave reply p50 / p99', value: `${sig(quantile(reply, 0.5))} / ${sig(quantile(reply, 0.99))}`, unit: 'ms', how: 'NATS request -> LeaveReply round trip (the daemon answers once suppression is in effect)' },
      { section: 'latency', name: 'silence -> lost error p50', value: sig(quantile(lost.errors, 0.5)), unit: 'ms', how: lostHow },
      { section: 'latency', name: 'silence -> lost error p99', value: sig(quantile(lost.errors, 0.99)), unit: 'ms', target: '>= 0 (never early), small', ok: early === 0 && lost.missing === 0, how: `same samples; min ${sig(Math.min(...lost.errors))} ms, max ${sig(Math.max(...lost.errors))} ms; ${early} early, ${lost.missing} never seen` },
    ],
    details: {
      leave: { samples: toPlatform.length, missing, per_run_p50_ms: perRunP50, p50_ms: quantile(toPlatform, 0.5), p90_ms: quantile(toPlatform, 0.9), p99_ms: quantile(toPlatform, 0.99), max_ms: Math.max(...toPlatform), reply_p50_ms: quantile(reply, 0.5), reply_p99_ms: quantile(reply, 0.99) },
      lost: { samples: lost.errors.length, missing: lost.missing, threshold_ms: lost.thresholdMs, error_ms: lost.errors.sort((a, b) => a - b) },
    },
  };
}
