/**
 * Receiver section: a load generator simulating N nodes (full pings of 10
 * workers each) against 1, then 2 `hbagg receive --store nats://...`
 * replicas (child processes) sharing a JetStream KV bucket on one
 * nats-server. Per N and replica count: pings applied per second at full
 * speed (bounded concurrency), request latency p99 as the generator sees it,
 * store operations per ping (from the replicas' /metrics), receiver RSS per
 * node, and what that means at a 30 s ping interval.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { quantile, sig, spawnHbagg, startNatsServer, waitFor, type HbaggProcess } from '../testing/index.js';
import type { Figure, SectionResult } from './lib/report.js';

export interface ReceiverBenchOptions {
  sizes: number[];
  /** Measured steady-state time per (N, replicas). */
  durationMs: number;
  /** Requests in flight at once. */
  concurrency: number;
  workersPerNode?: number;
}

interface Replica {
  url: string;
  child: HbaggProcess;
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

function post(url: string, body: string, key: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(`${url}/v1/heartbeats`, {
      method: 'POST', agent, headers: { 'content-type': 'application/json', 'idempotency-key': key, 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

function rssOf(pid: number | undefined): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN) * 1024;
}

/** CPU seconds (user + system) the process has used so far. */
function cpuOf(pid: number | undefined): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  // utime and stime are fields 14 and 15 of stat (11 and 12 after the command), in clock ticks (100 Hz on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}

async function startReplica(nats: string, bucket: string): Promise<Replica> {
  const child = spawnHbagg(['receive', '--port', '0', '--store', nats, '--bucket', bucket]);
  const url = await waitFor(() => /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(child.stderr())?.[1], { timeoutMs: 30_000, intervalMs: 100, message: 'receiver up' });
  return { url, child };
}

/** Pings round-robin over the nodes and the replicas, `total` of them or until `untilMs` has passed. */
async function drive(
  nodes: number, workers: number, replicas: Replica[], concurrency: number, daemon: string, seq0: number,
  limit: { total: number } | { untilMs: number },
) {
  const latencies: number[] = [];
  let ok = 0;
  let failed = 0;
  const statuses: Record<string, number> = {};
  let next = 0;
  const t0 = performance.now();
  const more = () => ('total' in limit ? next < limit.total : performance.now() - t0 < limit.untilMs);
  const now = Date.now();
  const body = (node: number, s: number) => JSON.stringify({
    v: 1, node: `node-${node}`, daemon: { instance: daemon, version: 'bench', started_at: now },
    batch: { id: `node-${node}:${daemon}:${s}`, seq: s, part: 1, parts: 1, sent_at: Date.now(), next_ping_within_ms: 600_000, final: false },
    workers: Array.from({ length: workers }, (_, w) => ({
      worker: `w${w}`, instance: `node-${node}-w${w}`, state: 'active', since: now, first_seen: now, last_seen: Date.now(), beats: 30, seq: s,
    })),
  });
  const lane = async () => {
    while (more()) {
      const i = next++;
      const node = i % nodes;
      const s = seq0 + i;
      const started = performance.now();
      const status = await post(replicas[i % replicas.length]!.url, body(node, s), `node-${node}:${daemon}:${s}`);
      latencies.push(performance.now() - started);
      if (status === 200) ok++;
      else {
        failed++;
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return { ok, failed, statuses, latencies };
}

const sum = async (replicas: Replica[], name: string) => (await Promise.all(replicas.map((r) => metric(r.url, name)))).reduce((a, b) => a + b, 0);

export async function benchReceiver(opts: ReceiverBenchOptions): Promise<SectionResult> {
  const workers = opts.workersPerNode ?? 10;
  const nats = await startNatsServer({ jetstream: true });
  const figures: Figure[] = [];
  const details: Record<string, unknown>[] = [];
  try {
    for (const n of opts.sizes) {
      for (const count of [1, 2]) {
        const bucket = `bench_${randomBytes(3).toString('hex')}`;
        const replicas: Replica[] = [];
        for (let i = 0; i < count; i++) replicas.push(await startReplica(nats.url, bucket));
        try {
          const rssBefore = replicas.map((r) => rssOf(r.child.proc.pid));
          const daemon = randomBytes(4).toString('hex');
          // Every node appears once (events published), then steady state: full pings, no changes.
          const warm = await drive(n, workers, replicas, opts.concurrency, daemon, 0, { total: n });
          const ops0 = await sum(replicas, 'hbagg_receiver_store_ops_total');
          const applied0 = await sum(replicas, 'hbagg_receiver_pings_applied_total');
          const cpu0 = replicas.map((r) => cpuOf(r.child.proc.pid));
          const t0 = performance.now();
          const run = await drive(n, workers, replicas, opts.concurrency, daemon, n, { untilMs: opts.durationMs });
          const seconds = (performance.now() - t0) / 1000;
          const ops = (await sum(replicas, 'hbagg_receiver_store_ops_total')) - ops0;
          const applied = (await sum(replicas, 'hbagg_receiver_pings_applied_total')) - applied0;
          const conflicts = await sum(replicas, 'hbagg_receiver_conflicts_total');
          const rssAfter = replicas.map((r) => rssOf(r.child.proc.pid));
          const cpuSeconds = replicas.reduce((a, r, i) => a + cpuOf(r.child.proc.pid) - cpu0[i]!, 0);
          const cpuPerPing = cpuSeconds / Math.max(1, applied);
          // Each replica has a core of its own in this estimate: `count` cores over the CPU all replicas spend per ping.
          const nodesAt30s = (count * 30) / cpuPerPing;
          const perSec = applied / seconds;
          const p99 = quantile(run.latencies, 0.99);
          const rssPerNode = rssAfter.reduce((a, b, i) => a + b - rssBefore[i]!, 0) / count / n;
          const tag = `N=${n}, ${count} replica${count > 1 ? 's' : ''}`;
          figures.push(
            { section: 'receiver', name: `pings applied/s (${tag})`, value: sig(perSec), unit: 'pings/s', how: `full pings of ${workers} workers, ${opts.concurrency} in flight, ${seconds.toFixed(1)} s, jetstream store on one nats-server` },
            { section: 'receiver', name: `request p99 (${tag})`, value: sig(p99), unit: 'ms', how: 'POST to answer, as the load generator sees it' },
            { section: 'receiver', name: `store ops per ping (${tag})`, value: sig(ops / Math.max(1, applied)), unit: 'ops', how: 'reads + writes + publishes over applied pings (steady state: no events)' },
            { section: 'receiver', name: `RSS per node (${tag})`, value: sig(rssPerNode), unit: 'B', how: 'receiver RSS growth per node held, per replica' },
            { section: 'receiver', name: `receiver CPU per ping (${tag})`, value: sig(cpuPerPing * 1e6), unit: 'us', how: 'user+system CPU of all replicas over applied pings (/proc/PID/stat)' },
            { section: 'receiver', name: `nodes at a 30 s interval, by wall throughput (${tag})`, value: sig(perSec * 30), unit: 'nodes', how: 'applied pings/s x 30 s on this loaded machine' },
            { section: 'receiver', name: `nodes at a 30 s interval, one core per replica (${tag})`, value: sig(nodesAt30s), unit: 'nodes', how: 'replicas x 30 s / CPU per ping (the nats-server not counted)' },
          );
          details.push({ n, replicas: count, seconds, applied, failed: run.failed, failedStatuses: run.statuses, warmFailed: warm.statuses, perSec, p99, ops, conflicts, rssBefore, rssAfter, cpuSeconds });
          process.stderr.write(`  receiver ${tag}: ${Math.round(perSec)} pings/s, p99 ${p99.toFixed(1)} ms, ${(ops / Math.max(1, applied)).toFixed(2)} ops/ping, ${Math.round(rssPerNode)} B/node, ${Math.round(cpuPerPing * 1e6)} us CPU/ping, ${conflicts} conflicts, failed ${JSON.stringify(run.statuses)} (first round ${JSON.stringify(warm.statuses)})\n`);
        } finally {
          for (const r of replicas) {
            r.child.proc.kill('SIGTERM');
            await r.child.exited;
          }
        }
      }
    }
  } finally {
    agent.destroy();
    await nats.stop();
  }
  return { figures, details: { workersPerNode: workers, concurrency: opts.concurrency, durationMs: opts.durationMs, runs: details } };
}
