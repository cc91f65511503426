/**
 * Section 4, cost per tracked worker: the core alone (bench/cost-registry.ts)
 * and the whole daemon process (bench/daemon-host.ts under --expose-gc, fed
 * one beat per worker over NATS, then more beats for CPU per beat).
 */
import { connect } from '@nats-io/transport-node';
import { beatJson, newInstance, workerId } from './lib/beats.js';
import { startChild } from './lib/child.js';
import { startDaemon, stopDaemon, waitForStats, type DaemonStats } from './lib/daemons.js';
import { startBenchPlatform, type BenchPlatform } from './lib/platform.js';
import type { Figure, SectionResult } from './lib/report.js';
import { linearFit, sig } from '../testing/stats.js';

export interface CostOptions {
  natsUrl: string;
  sizes: number[];
  daemonSizes: number[];
  /** Beats timed per size in the core measurement. */
  beats: number;
}

interface CoreResult {
  n: number;
  heapBytesPerWorker: number;
  rssBytesPerWorker: number;
  decodeApplyUsPerBeat: number;
  decodeApplyBeatsPerSec: number;
  applyUsPerBeat: number;
  pingMs: number;
  pingBytesPerWorker: number;
  heapBytesPerWorkerSteps: number[];
}

async function core(n: number, beats: number): Promise<CoreResult> {
  const child = startChild('cost-registry.ts', { n, beats }, ['--expose-gc', '--single-threaded-gc']);
  try {
    return await child.next<CoreResult>('result', 120_000);
  } finally {
    await child.kill();
  }
}

/**
 * One beat per worker, each worker with its own instance id (`instance-i`),
 * at most `perSec` beats a second: workers arrive at a steady pace, as they
 * do on a node, not as one burst that fills every buffer on the way.
 */
async function publishAll(natsUrl: string, prefix: string, n: number, seq: number, instance: string, idPrefix = 'w', perSec = 50_000): Promise<void> {
  const nc = await connect({ servers: natsUrl, name: 'bench-cost' });
  try {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const w = `${idPrefix}${workerId(i)}`;
      nc.publish(`${prefix}.beat.${w}`, beatJson(w, `${instance}-${i}`, seq, 60_000));
      if ((i + 1) % 1000 === 0) {
        await nc.flush();
        const ahead = t0 + ((i + 1) / perSec) * 1000 - performance.now();
        if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
      }
    }
    await nc.flush();
  } finally {
    await nc.close();
  }
}

/** Waits until no ping is in flight: the last request was a ping's last part, `quietMs` ago. */
async function pingerAtRest(platform: BenchPlatform, quietMs: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const last = platform.requests.at(-1);
    if (last && last.part === last.parts && Date.now() - last.at >= quietMs) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface DaemonResult {
  n: number;
  rssBefore: number;
  rssAfter: number;
  heapBefore: number;
  heapAfter: number;
  rssBytesPerWorker: number;
  heapBytesPerWorker: number;
  cpuUsPerBeat: number;
  rounds: number;
}

const WARM_WORKERS = 2_000;

/** Memory of a daemon at rest: no ping in flight, two full GCs a second apart (V8 gives pages back lazily). */
async function atRest(daemon: Awaited<ReturnType<typeof startDaemon>>, platform: BenchPlatform): Promise<DaemonStats> {
  await pingerAtRest(platform, 300, 20_000);
  await daemon.call('gc');
  await new Promise((r) => setTimeout(r, 1_000));
  await pingerAtRest(platform, 300, 20_000);
  return daemon.call<DaemonStats>('gc');
}

async function daemonLevel(natsUrl: string, n: number): Promise<DaemonResult> {
  const platform = await startBenchPlatform();
  const prefix = `bc${n}`;
  const daemon = await startDaemon(
    { natsUrl, prefix, platformUrl: platform.url, maxWorkers: n + WARM_WORKERS, nodeId: `bench-cost-${n}` },
    ['--expose-gc', '--single-threaded-gc'],
  );
  try {
    // Warm-up workers (compiled code, buffers, young generation) before the baseline, kept tracked.
    const warm = newInstance();
    for (let seq = 1; seq <= 3; seq++) await publishAll(natsUrl, `${prefix}`, WARM_WORKERS, seq, warm, 'warm');
    await waitForStats(daemon, (s) => s.accepted >= 3 * WARM_WORKERS, 30_000, 'warm-up beats accepted');
    const base = await atRest(daemon, platform);
    const instance = newInstance();
    await publishAll(natsUrl, prefix, n, 1, instance);
    await waitForStats(daemon, (s) => s.size === n + WARM_WORKERS, 60_000, `${n} workers tracked`);
    const loaded = await atRest(daemon, platform);
    const rounds = n >= 100_000 ? 2 : n >= 10_000 ? 5 : 20;
    const c0 = loaded.cpuUser + loaded.cpuSystem;
    const accepted0 = loaded.accepted;
    for (let r = 0; r < rounds; r++) await publishAll(natsUrl, prefix, n, r + 2, instance);
    const s = await waitForStats(daemon, (x) => x.accepted >= accepted0 + n * rounds, 120_000, 'all beats accepted');
    return {
      n,
      rssBefore: base.rss,
      rssAfter: loaded.rss,
      heapBefore: base.heapUsed,
      heapAfter: loaded.heapUsed,
      rssBytesPerWorker: (loaded.rss - base.rss) / n,
      heapBytesPerWorker: (loaded.heapUsed - base.heapUsed) / n,
      cpuUsPerBeat: (s.cpuUser + s.cpuSystem - c0) / (n * rounds),
      rounds,
    };
  } finally {
    await stopDaemon(daemon);
    await platform.close();
  }
}

export async function benchCost(o: CostOptions): Promise<SectionResult> {
  const cores: CoreResult[] = [];
  for (const n of o.sizes) cores.push(await core(n, o.beats));
  const daemons: DaemonResult[] = [];
  for (const n of o.daemonSizes) daemons.push(await daemonLevel(o.natsUrl, n));

  const worst = Math.max(...cores.map((c) => c.heapBytesPerWorker));
  const best = Math.min(...cores.map((c) => c.heapBytesPerWorker));
  const figures: Figure[] = [];
  for (const c of cores) {
    figures.push(
      { section: 'cost', name: `core heap/worker @${c.n}`, value: sig(c.heapBytesPerWorker), unit: 'B', target: '<= 1024', ok: c.heapBytesPerWorker <= 1024, how: `heapUsed after a full GC, after - before N workers each sent one ~200 B beat with meta and its own instance id (decoded as from NATS), / N; Registry alone, own process, after a 20k-worker warm-up; median of ${c.heapBytesPerWorkerSteps.length} registries: ${c.heapBytesPerWorkerSteps.join(', ')}` },
      { section: 'cost', name: `core CPU/beat @${c.n} decode+apply`, value: sig(c.decodeApplyUsPerBeat), unit: 'us', how: `process.cpuUsage over rounds of one beat per worker (size check, UTF-8, JSON.parse, validation, registry); ${sig(c.decodeApplyBeatsPerSec)} beats/s on one core` },
      { section: 'cost', name: `core CPU/beat @${c.n} apply only`, value: sig(c.applyUsPerBeat), unit: 'us', how: 'registry.applyBeat on beats decoded beforehand' },
      { section: 'cost', name: `core CPU/ping @${c.n}`, value: sig(c.pingMs), unit: 'ms', how: `registry.collect + buildPing + JSON.stringify of every part (${sig(c.pingBytesPerWorker)} B of body per worker)` },
    );
  }
  figures.push({
    section: 'cost', name: 'core heap/worker max/min over N', value: sig(worst / best), unit: 'ratio', target: 'linear (~1)', ok: worst / best <= 1.5,
    how: `bytes per worker at N = ${o.sizes.join(', ')} are ${cores.map((c) => sig(c.heapBytesPerWorker)).join(', ')}: constant per worker means linear growth`,
  });
  for (const d of daemons) {
    figures.push(
      { section: 'cost', name: `daemon RSS/worker @${d.n}`, value: sig(d.rssBytesPerWorker), unit: 'B', how: `RSS of the daemon process at rest (no ping in flight, full GCs): tracking ${WARM_WORKERS} warm-up workers + N (one ~200 B beat each over NATS at 50k beats/s, own instance ids) minus with the warm-up workers only, / N; includes memory the allocator keeps after the pings of N new workers (${sig(d.rssAfter / 2 ** 20)} MiB in all)` },
      { section: 'cost', name: `daemon heap/worker @${d.n}`, value: sig(d.heapBytesPerWorker), unit: 'B', how: 'heapUsed at rest after full GCs, same procedure' },
      { section: 'cost', name: `daemon CPU/beat @${d.n}`, value: sig(d.cpuUsPerBeat), unit: 'us', how: `daemon process CPU over ${d.rounds} more beat(s) per worker / beats: NATS parsing, intake, registry, metrics and the pings of the period` },
    );
  }
  let daemonFit: ReturnType<typeof linearFit> | undefined;
  if (daemons.length >= 2) {
    daemonFit = linearFit(daemons.map((d) => d.n), daemons.map((d) => d.rssAfter - d.rssBefore));
    const heapFit = linearFit(daemons.map((d) => d.n), daemons.map((d) => d.heapAfter - d.heapBefore));
    figures.push(
      { section: 'cost', name: 'daemon RSS growth (fit)', value: sig(daemonFit.slope), unit: 'B/worker', target: 'linear, <= 1024', ok: daemonFit.slope <= 1024, how: `least-squares slope of daemon RSS growth over N = ${o.daemonSizes.join(', ')}; r^2 = ${sig(daemonFit.r2, 5)}; intercept ${sig(daemonFit.intercept / 2 ** 20)} MiB` },
      { section: 'cost', name: 'daemon heap growth (fit)', value: sig(heapFit.slope), unit: 'B/worker', how: `same, heapUsed; r^2 = ${sig(heapFit.r2, 5)}` },
    );
  }
  return { figures, details: { core: cores, daemon: daemons, daemon_rss_fit: daemonFit ?? null } };
}
