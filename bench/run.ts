/**
 * `npm run bench [-- --quick] [-- --only ingest,load,latency,cost,stop,idle,opencti,delta,receiver] [-- --profile DIR]`
 *
 * Starts its own nats-server (free port, 127.0.0.1) and platform stubs, runs
 * the sections, prints a table and writes bench/results.json (a run limited
 * with --only prints but does not overwrite results.json). See BENCHMARKS.md.
 */
import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNatsServer, startPlatformStub } from '../testing/index.js';
import { benchCost } from './cost.js';
import { benchDelta } from './delta.js';
import { benchIdle } from './idle.js';
import { benchIngest } from './ingest.js';
import { benchLatency } from './latency.js';
import { benchLoad } from './load.js';
import { benchOpenCti } from './opencti.js';
import { benchReceiver } from './receiver.js';
import { benchStop } from './stop.js';
import { machineInfo } from './lib/machine.js';
import { table, type Figure, type SectionResult } from './lib/report.js';

const SECTIONS = ['ingest', 'load', 'latency', 'cost', 'stop', 'idle', 'opencti', 'delta', 'receiver'] as const;
type Section = (typeof SECTIONS)[number];

function parseArgs(argv: string[]): { quick: boolean; only: Section[]; profileDir?: string } {
  let quick = false;
  let only: Section[] = [...SECTIONS];
  let profileDir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--quick') quick = true;
    else if (a === '--only' || a.startsWith('--only=')) {
      const v = a.includes('=') ? a.slice(7) : (argv[++i] ?? '');
      only = v.split(',').map((s) => {
        if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`unknown section "${s}"; known: ${SECTIONS.join(', ')}`);
        return s as Section;
      });
    } else if (a === '--profile') profileDir = path.resolve(argv[++i] ?? 'bench-profiles');
    else throw new Error(`unknown argument "${a}"; usage: npm run bench -- [--quick] [--only ${SECTIONS.join(',')}] [--profile DIR]`);
  }
  return { quick, only, profileDir };
}

const args = parseArgs(process.argv.slice(2));
const started = new Date();
const t0 = performance.now();
const machineAtStart = machineInfo();
process.stderr.write(`hbagg bench (${args.quick ? 'quick' : 'full'}), ${machineAtStart.cores} x ${machineAtStart.cpu_model}, node ${machineAtStart.node_version}, load ${machineAtStart.load_average_1m}\n`);

const nats = await startNatsServer();
const stub = await startPlatformStub();
const results: Partial<Record<Section, SectionResult>> = {};
let ingestRatio: number | undefined;
try {
  for (const section of args.only) {
    const s0 = performance.now();
    process.stderr.write(`${section}...\n`);
    if (section === 'ingest') {
      const r = await benchIngest({
        natsUrl: nats.url, platformUrl: stub.url, profileDir: args.profileDir,
        pairs: args.quick ? 3 : 5, n: args.quick ? 50_000 : 200_000, workers: 1000,
      });
      ingestRatio = r.ingestRatio;
      results.ingest = r;
    } else if (section === 'load') {
      results.load = await benchLoad({
        natsUrl: nats.url, sizes: [10, 100, 1000, 10_000], durationMs: args.quick ? 8_000 : 120_000, baselineSample: 200,
      });
    } else if (section === 'latency') {
      results.latency = await benchLatency({
        natsUrl: nats.url, leaveRuns: args.quick ? 1 : 3, leavesPerRun: 200, leavesPerSec: args.quick ? 100 : 20,
        lostWorkers: args.quick ? 20 : 60, lostSpreadMs: args.quick ? 1_000 : 6_000,
      });
    } else if (section === 'cost') {
      results.cost = await benchCost({
        natsUrl: nats.url, sizes: args.quick ? [1_000, 10_000] : [1_000, 10_000, 100_000], daemonSizes: args.quick ? [10_000] : [1_000, 10_000, 100_000],
        beats: args.quick ? 50_000 : 300_000,
      });
    } else if (section === 'delta') {
      results.delta = await benchDelta({
        sizes: [10, 100, 1000, 10_000], churnSizes: args.quick ? [1000] : [1000, 10_000],
        directSample: args.quick ? 1000 : 5000, buildReps: args.quick ? 50 : 200,
      });
    } else if (section === 'idle') {
      results.idle = await benchIdle({
        natsUrl: nats.url, platformUrl: stub.url, runs: args.quick ? 1 : 3,
        warmupMs: 10_000, measureMs: 30_000, quietWorkers: 1000,
      });
    } else if (section === 'stop') {
      results.stop = await benchStop({
        natsUrl: nats.url, healthyRuns: args.quick ? 2 : 5, hangingRuns: args.quick ? 1 : 3,
        hangingShutdownMs: args.quick ? 2_000 : undefined,
      });
    } else if (section === 'opencti') {
      results.opencti = await benchOpenCti({
        sizes: [10, 100, 1000], periodMs: args.quick ? 3_000 : 6_000, periods: args.quick ? 2 : 3, rolling: args.quick ? 10 : 50,
      });
    } else if (section === 'receiver') {
      results.receiver = await benchReceiver({
        sizes: args.quick ? [100, 1_000] : [100, 1_000, 10_000], durationMs: args.quick ? 3_000 : 10_000, concurrency: 64,
      });
    }
    process.stderr.write(`${section} took ${((performance.now() - s0) / 1000).toFixed(1)} s\n`);
  }
} finally {
  await stub.close();
  await nats.stop();
}

const figures: Figure[] = Object.values(results).flatMap((r) => r.figures);
process.stdout.write(`\n${table(figures)}\n\n`);
const out = {
  ingest_ratio: ingestRatio ?? null,
  date: started.toISOString(),
  mode: args.quick ? 'quick' : 'full',
  duration_s: Math.round((performance.now() - t0) / 100) / 10,
  machine: { ...machineAtStart, load_average_1m_at_end: machineInfo().load_average_1m, shared: 'a shared 2-core machine; other work was running; numbers are noisy' },
  figures,
  sections: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.details])),
};
if (args.only.length === SECTIONS.length) {
  const file = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results.json');
  writeFileSync(`${file}.tmp`, `${JSON.stringify(out, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  process.stderr.write(`wrote ${path.relative(process.cwd(), file)} in ${out.duration_s} s\n`);
} else {
  process.stderr.write(`(--only: results.json not written) ingest_ratio=${String(out.ingest_ratio)} in ${out.duration_s} s\n`);
}
