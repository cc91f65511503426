/**
 * Section `idle`: what hbagg costs a node while nothing happens, next to the
 * floor (a bare nats.js subscriber, bench/idle/floor.mjs) and the naive way
 * (bench/idle/naive-daemon.mjs), all three measured in the same window on the
 * same nats-server and healthy platform.
 *
 * hbagg runs as users run it: `node dist/cli.js run` (built first), not under
 * tsx. CPU is the sum of every thread's time on CPU (/proc/<pid>/task/<tid>/
 * schedstat, nanoseconds), so it is exact whatever else the machine does;
 * RSS is /proc/<pid>/status VmRSS, sampled each second.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../src/util/free-port.js';
import type { Figure, SectionResult } from './lib/report.js';
import { median, sig } from '../testing/stats.js';

export interface IdleOptions {
  natsUrl: string;
  platformUrl: string;
  /** Runs per scenario; each measures all three processes at once. */
  runs: number;
  warmupMs: number;
  measureMs: number;
  /** Quiet workers of the second scenario (1 Hz each). */
  quietWorkers: number;
}

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH_DIR);

interface Proc {
  name: 'floor' | 'naive' | 'hbagg';
  child: ChildProcess;
}

interface Sample {
  cpuMsPerSec: number;
  rssMiB: number;
  rssMaxMiB: number;
}

/** Nanoseconds on CPU of every thread of `pid` (threads that ended are not counted: sample deltas only). */
function cpuNs(pid: number): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return total;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function startProc(name: Proc['name'], args: string[], env: NodeJS.ProcessEnv = process.env): Proc {
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout?.resume();
  return { name, child };
}

function waitLine(p: Proc, line: string, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${p.name} not ready within ${ms} ms`)), ms);
    p.child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes(line)) {
        clearTimeout(timer);
        resolve();
      }
    });
    p.child.once('exit', (code) => reject(new Error(`${p.name} exited with ${String(code)}`)));
  });
}

async function waitReady(url: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stop(p: Proc): Promise<void> {
  if (p.child.exitCode !== null) return;
  const gone = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGTERM');
  await Promise.race([gone, new Promise((r) => setTimeout(r, 15_000))]);
  if (p.child.exitCode === null) p.child.kill('SIGKILL');
}

async function oneRun(o: IdleOptions, quiet: number, run: number): Promise<Record<Proc['name'], Sample>> {
  const prefix = `idle${run}q${quiet}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'hbagg-idle-'));
  const port = await freePort();
  const procs: Proc[] = [];
  let workers: Proc | undefined;
  try {
    const floor = startProc('floor', [path.join(BENCH_DIR, 'idle/floor.mjs'), o.natsUrl, `${prefix}.beat.*`]);
    const naive = startProc('naive', [path.join(BENCH_DIR, 'idle/naive-daemon.mjs'), o.natsUrl, `${prefix}n`, o.platformUrl]);
    const hbagg = startProc('hbagg', [path.join(ROOT, 'dist/cli.js'), 'run'], {
      ...process.env,
      HBAGG_NODE_ID: `idle-${run}`,
      HBAGG_NATS_URL: o.natsUrl,
      HBAGG_SUBJECT_PREFIX: prefix,
      HBAGG_PLATFORM_URL: o.platformUrl,
      HBAGG_HTTP_LISTEN: `127.0.0.1:${port}`,
      HBAGG_STATE_DIR: path.join(dir, 'state'),
      HBAGG_LOG_LEVEL: 'warn',
    });
    procs.push(floor, naive, hbagg);
    await Promise.all([waitLine(floor, 'ready', 20_000), waitLine(naive, 'ready', 20_000), waitReady(`http://127.0.0.1:${port}/readyz`, 30_000)]);
    if (quiet > 0) {
      // The naive daemon listens on its own prefix: the same beats are published to both spaces.
      workers = startProc('floor', [path.join(BENCH_DIR, 'idle/quiet-workers.mjs'), o.natsUrl, prefix, String(quiet)]);
      const workersNaive = startProc('floor', [path.join(BENCH_DIR, 'idle/quiet-workers.mjs'), o.natsUrl, `${prefix}n`, String(quiet)]);
      procs.push(workersNaive);
      await Promise.all([waitLine(workers, 'ready', 20_000), waitLine(workersNaive, 'ready', 20_000)]);
    }
    await new Promise((r) => setTimeout(r, o.warmupMs));
    const measured = [floor, naive, hbagg];
    const pids = measured.map((p) => p.child.pid as number);
    const cpu0 = pids.map(cpuNs);
    const t0 = performance.now();
    const rss: number[][] = pids.map(() => []);
    while (performance.now() - t0 < o.measureMs) {
      await new Promise((r) => setTimeout(r, 1_000));
      pids.forEach((pid, i) => rss[i]?.push(rssMiB(pid)));
    }
    const secs = (performance.now() - t0) / 1000;
    const cpu1 = pids.map(cpuNs);
    const out = {} as Record<Proc['name'], Sample>;
    measured.forEach((p, i) => {
      out[p.name] = {
        cpuMsPerSec: ((cpu1[i] as number) - (cpu0[i] as number)) / 1e6 / secs,
        rssMiB: median(rss[i] ?? []),
        rssMaxMiB: Math.max(...(rss[i] ?? [])),
      };
    });
    return out;
  } finally {
    if (workers) procs.push(workers);
    await Promise.all(procs.map(stop));
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchIdle(o: IdleOptions): Promise<SectionResult> {
  // hbagg is measured as shipped: compiled JavaScript, no loader.
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  const figures: Figure[] = [];
  const details: Record<string, unknown> = { runs: o.runs, warmup_ms: o.warmupMs, measure_ms: o.measureMs };
  for (const quiet of [0, o.quietWorkers]) {
    const samples: Record<Proc['name'], Sample>[] = [];
    for (let run = 0; run < o.runs; run++) samples.push(await oneRun(o, quiet, run));
    const med = (name: Proc['name'], k: keyof Sample) => median(samples.map((s) => s[name][k]));
    const ratios = (name: Proc['name']) => samples.map((s) => sig(s[name].cpuMsPerSec / s.floor.cpuMsPerSec, 2));
    const label = quiet === 0 ? 'no workers' : `${quiet} quiet workers at 1 Hz`;
    const how = `${o.runs} run(s) of ${o.measureMs / 1000} s after ${o.warmupMs / 1000} s warm-up; all three processes in the same window; CPU from schedstat of every thread`;
    const floorCpu = med('floor', 'cpuMsPerSec');
    const hbCpu = med('hbagg', 'cpuMsPerSec');
    figures.push(
      { section: 'idle', name: `${label}: floor CPU`, value: sig(floorCpu), unit: 'ms/s', how: `bare nats.js subscriber; ${how}` },
      { section: 'idle', name: `${label}: naive CPU`, value: sig(med('naive', 'cpuMsPerSec')), unit: 'ms/s', how: `naive daemon (JSON.parse, Map, POST every 30 s); ratio to floor per run ${ratios('naive').join(', ')}` },
      {
        section: 'idle', name: `${label}: hbagg CPU`, value: sig(hbCpu), unit: 'ms/s',
        ...(quiet === 0 ? { target: '<= 3x floor', ok: hbCpu <= 3 * floorCpu } : {}),
        how: `node dist/cli.js run; ratio to floor per run ${ratios('hbagg').join(', ')}`,
      },
      { section: 'idle', name: `${label}: hbagg CPU / floor`, value: sig(hbCpu / floorCpu, 2), unit: 'x', how: 'medians of the runs' },
      { section: 'idle', name: `${label}: RSS floor / naive / hbagg`, value: `${sig(med('floor', 'rssMiB'))} / ${sig(med('naive', 'rssMiB'))} / ${sig(med('hbagg', 'rssMiB'))}`, unit: 'MiB', how: 'median of 1 s samples, median over runs' },
    );
    if (quiet === 0) {
      const rss = med('hbagg', 'rssMiB');
      figures.push({ section: 'idle', name: 'hbagg RSS at rest', value: sig(rss), unit: 'MiB', target: '<= 60', ok: rss <= 60, how: 'no workers, healthy platform; median of 1 s samples' });
    }
    details[quiet === 0 ? 'idle' : `quiet_${quiet}`] = samples;
  }
  return { figures, details };
}
