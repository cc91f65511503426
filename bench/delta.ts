/**
 * Section "delta": what the platform must process in steady state (workers
 * beating at 1 Hz, stable status) at each W, for direct pinging (every
 * worker POSTs its own beat), hbagg full pings (v1) and hbagg delta pings
 * (contract 1.1); the reference receiver's CPU to process it; the daemon's CPU to
 * build a ping (full vs delta at 10,000 workers, one change); and a churn
 * case (10% of the workers change status every second).
 *
 * The node is the daemon's real core (Registry, DeltaTracker, buildPing) on
 * a simulated clock: every worker beats once per simulated second, and a ping
 * goes out every 30 s (max_interval_ms, the steady cadence the `load`
 * section measures: 2 pings/min at any W). Each ping is POSTed to a real
 * reference receiver in its own process, whose answers (delta offers,
 * resync, 409) drive the tracker as they drive the daemon. A window of
 * full_every_ms (5 min) after a warm-up ping holds one periodic full ping
 * and nine deltas. The receiver's CPU is its own process's, read before and
 * after the window.
 */
import { buildPing, type DaemonInfo } from '../src/core/batch.js';
import { DeltaTracker } from '../src/core/delta.js';
import { Registry } from '../src/core/registry.js';
import type { Beat } from '../src/protocol/schemas.js';
import { beatJson, newInstance, workerId } from './lib/beats.js';
import { startChild, type BenchChild } from './lib/child.js';
import type { Figure, SectionResult } from './lib/report.js';
import { median, sig } from '../testing/stats.js';

export interface DeltaBenchOptions {
  sizes: number[];
  /** W for the churn case. */
  churnSizes: number[];
  /** Requests sampled to price direct pinging's receiver CPU. */
  directSample: number;
  /** Builds timed for the daemon-CPU figure. */
  buildReps: number;
}

const GAP_S = 30;
const FULL_EVERY_MS = 300_000;
const WINDOW_S = FULL_EVERY_MS / 1000;
const PART = 1000;
/** Request line and headers as fetch sends them, beside the body (measured once: see headBytes()). */
const HEAD_FIXED = 'POST /v1/heartbeats HTTP/1.1\r\nhost: 127.0.0.1:40000\r\nconnection: keep-alive\r\ncontent-type: application/json\r\nidempotency-key: \r\nuser-agent: hbagg/1.0.0\r\naccept: */*\r\naccept-language: *\r\nsec-fetch-mode: cors\r\naccept-encoding: gzip, deflate\r\ncontent-length: \r\n\r\n'.length;
const OPTS = { maxWorkers: 100_000, lostAfterMinMs: 3000, tombstoneRetentionMs: 600_000, maxTombstones: 100_000, defaultDrainTimeoutMs: 30_000 };

type Kind = 'full' | 'delta';

interface Traffic {
  requests: number;
  bytes: number;
  entries: number;
  cpuMs: number;
  minutes: number;
  modes: Record<string, number>;
  /** Bytes and pings by mode (full pings count once, whatever their parts). */
  bytesByMode: Record<string, number>;
  pingsByMode: Record<string, number>;
}

function headBytes(key: string, bodyBytes: number): number {
  return HEAD_FIXED + key.length + String(bodyBytes).length;
}

async function receiver(delta: boolean): Promise<{ child: BenchChild; url: string }> {
  const child = startChild('receiver-host.ts', { delta });
  const { url } = await child.next<{ url: string }>('ready', 30_000);
  return { child, url: `${url}/v1/heartbeats` };
}

async function cpuMs(child: BenchChild): Promise<number> {
  const u = await child.call<{ cpuUser: number; cpuSystem: number }>('usage');
  return (u.cpuUser + u.cpuSystem) / 1000;
}

async function post(url: string, key: string, body: string): Promise<{ status: number; answer: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': key, 'user-agent': 'hbagg/1.0.0' }, body });
  const answer = (await res.json()) as Record<string, unknown>;
  return { status: res.status, answer };
}

/** One node: the daemon's core on a simulated clock. */
class SimNode {
  readonly registry = new Registry(OPTS);
  readonly tracker: DeltaTracker | undefined;
  readonly info: DaemonInfo;
  readonly instance = newInstance();
  private readonly busy: boolean[];
  private seq = 0;
  private beatSeq = 0;
  mono = 0;

  constructor(readonly workers: number, kind: Kind) {
    this.info = { node: `bench-delta-${workers}-${kind}`, instance: newInstance(), version: '1.0.0', startedAt: Date.now() };
    this.busy = new Array<boolean>(workers).fill(true);
    if (kind === 'delta') {
      this.tracker = new DeltaTracker({ fullEveryMs: FULL_EVERY_MS });
      this.registry.watch(this.tracker);
    }
  }

  /** One simulated second: `churn` of the workers flip status, then every worker beats. */
  second(churn: number): void {
    this.mono += 1000;
    for (let k = 0; k < churn * this.workers; k++) {
      const i = Math.floor(Math.random() * this.workers);
      this.busy[i] = !this.busy[i];
    }
    this.beatSeq++;
    const t = { wall: 1_700_000_000_000 + this.mono, mono: this.mono };
    for (let i = 0; i < this.workers; i++) {
      const beat: Beat = {
        v: 1, worker: workerId(i), instance: this.instance, seq: this.beatSeq, interval_ms: 1000, status: this.busy[i] ? 'busy' : 'idle',
        inflight: this.beatSeq % 4, load: 0.42, meta: { zone: 'eu-west-1a', gpu: true, slots: 8 },
      };
      this.registry.applyBeat(beat, t);
    }
  }

  /** Builds one ping, POSTs its parts and feeds the answers back, as the pinger does. */
  async ping(url: string, into?: Traffic): Promise<void> {
    const seq = ++this.seq;
    const plan = this.tracker?.plan(this.registry, seq, this.mono, false);
    const { workers, sent } = plan ?? this.registry.collect();
    const parts = buildPing(this.info, {
      seq, workers, sent, partSize: PART, sentAt: 1_700_000_000_000 + this.mono, nextPingWithinMs: 30_250, final: false,
      ...(plan === undefined ? {} : { delta: { mode: plan.mode, base: plan.base, roster: plan.roster } }),
    });
    let complete = true;
    for (const part of parts) {
      const body = JSON.stringify(part.body);
      const { status, answer } = await post(url, part.body.batch.id, body);
      if (into !== undefined) {
        into.requests++;
        into.bytes += Buffer.byteLength(body) + headBytes(part.body.batch.id, Buffer.byteLength(body));
        into.entries += part.body.workers.length;
        const mode = part.body.batch.mode ?? 'v1';
        into.modes[mode] = (into.modes[mode] ?? 0) + 1;
        into.bytesByMode[mode] = (into.bytesByMode[mode] ?? 0) + Buffer.byteLength(body) + headBytes(part.body.batch.id, Buffer.byteLength(body));
        if (part.body.batch.part === 1) into.pingsByMode[mode] = (into.pingsByMode[mode] ?? 0) + 1;
      }
      if (status === 409) {
        this.tracker?.conflict();
        complete = false;
        break;
      }
      if (status !== 200) throw new Error(`receiver answered ${status}: ${JSON.stringify(answer)}`);
      this.registry.acknowledge(part.sent, { wall: 0, mono: this.mono });
      this.tracker?.accepted(part.sent, { delta: answer.delta === true, resync: answer.resync === true });
    }
    this.tracker?.finish(complete);
  }
}

/** Steady-state traffic of one node for one full_every_ms window, and the receiver's CPU for it. */
async function window(workers: number, kind: Kind, churn: number): Promise<Traffic> {
  const { child, url } = await receiver(kind === 'delta');
  try {
    const node = new SimNode(workers, kind);
    node.second(0);
    await node.ping(url); // warm-up: the first ping of a daemon instance
    await node.ping(url); // the first delta offer is answered; steady from here on
    const t: Traffic = { requests: 0, bytes: 0, entries: 0, cpuMs: 0, minutes: WINDOW_S / 60, modes: {}, bytesByMode: {}, pingsByMode: {} };
    let cpu = 0;
    for (let s = 1; s <= WINDOW_S; s++) {
      node.second(churn);
      if (s % GAP_S !== 0) continue;
      const before = await cpuMs(child);
      await node.ping(url, t);
      cpu += (await cpuMs(child)) - before;
    }
    t.cpuMs = cpu;
    return t;
  } finally {
    await child.call('exit').catch(() => undefined);
    await child.exited;
  }
}

/** Direct pinging: the receiver's CPU per request, from a sample of one-entry v1 pings (one per worker). */
async function directCpuPerRequest(sample: number): Promise<number> {
  const { child, url } = await receiver(false);
  try {
    const instance = newInstance();
    const now = Date.now();
    const body = (i: number) => JSON.stringify({
      v: 1, node: workerId(i), daemon: { instance, version: '1.0.0', started_at: now },
      batch: { id: `${workerId(i)}:${instance}:1`, seq: 1, part: 1, parts: 1, sent_at: now, next_ping_within_ms: 3000, final: false },
      workers: [{ worker: workerId(i), instance, state: 'active', since: now, first_seen: now, last_seen: now, beats: 1, seq: 1, interval_ms: 1000, status: 'busy', inflight: 1, load: 0.42, meta: { zone: 'eu-west-1a', gpu: true, slots: 8 } }],
    });
    for (let i = 0; i < 200; i++) await post(url, `${workerId(i)}:${instance}:1`, body(i)); // warm-up (JIT)
    const before = await cpuMs(child);
    for (let i = 200; i < 200 + sample; i++) await post(url, `${workerId(i)}:${instance}:1`, body(i));
    return ((await cpuMs(child)) - before) / sample;
  } finally {
    await child.call('exit').catch(() => undefined);
    await child.exited;
  }
}

/** The daemon's CPU to build one ping (plan + parts + JSON) at `workers`, with one status change per ping. */
function buildCost(workers: number, reps: number): { fullMs: number; deltaMs: number } {
  const time = (kind: Kind): number => {
    const node = new SimNode(workers, kind);
    node.second(0);
    const build = () => {
      const plan = node.tracker?.plan(node.registry, 1, node.mono, false);
      const { workers: ws, sent } = plan ?? node.registry.collect();
      const parts = buildPing(node.info, { seq: 1, workers: ws, sent, partSize: PART, sentAt: 0, nextPingWithinMs: 1, final: false, ...(plan ? { delta: { mode: plan.mode, base: plan.base, roster: plan.roster } } : {}) });
      for (const p of parts) JSON.stringify(p.body);
      for (const p of parts) {
        node.registry.acknowledge(p.sent, { wall: 0, mono: node.mono });
        node.tracker?.accepted(p.sent, { delta: true });
      }
      node.tracker?.finish(true);
    };
    build(); // the first ping is full; deltas from here on
    const samples: number[] = [];
    for (let r = 0; r < reps; r++) {
      const w = r % workers;
      node.registry.applyBeat({
        v: 1, worker: workerId(w), instance: node.instance, seq: r + 10, interval_ms: 1000, status: r % 2 === 0 ? 'idle' : 'busy',
        meta: { zone: 'eu-west-1a', gpu: true, slots: 8 },
      }, { wall: 0, mono: node.mono });
      const t0 = process.cpuUsage();
      build();
      const d = process.cpuUsage(t0);
      samples.push((d.user + d.system) / 1000);
    }
    return median(samples);
  };
  return { fullMs: time('full'), deltaMs: time('delta') };
}

function num(x: number): number {
  return Math.abs(x) >= 100 ? Math.round(sig(x)) : sig(x);
}

export async function benchDelta(o: DeltaBenchOptions): Promise<SectionResult> {
  const beatBytes = Buffer.byteLength(beatJson(workerId(0), newInstance(), 1, 1000));
  const directHead = headBytes(`${workerId(0)}:${newInstance()}:1`, beatBytes);
  const directCpu = await directCpuPerRequest(o.directSample);
  const rows: Record<string, unknown>[] = [];
  const figures: Figure[] = [];
  const perMin = (t: Traffic) => ({ req: t.requests / t.minutes, bytes: t.bytes / t.minutes, entries: t.entries / t.minutes, cpuMs: t.cpuMs / t.minutes });
  const run = async (w: number, churn: number) => {
    const direct = { req: 60 * w, bytes: 60 * w * (beatBytes + directHead), entries: 60 * w, cpuMs: 60 * w * directCpu };
    const full = perMin(await window(w, 'full', churn));
    const deltaT = await window(w, 'delta', churn);
    const delta = perMin(deltaT);
    rows.push({ workers: w, churn, direct, full, delta, delta_modes: deltaT.modes });
    const label = churn > 0 ? `W=${w} churn ${churn * 100}%/s` : `W=${w}`;
    const cell = (x: { req: number; bytes: number; entries: number; cpuMs: number }) =>
      `${num(x.req)} req, ${num(x.bytes)} B, ${num(x.entries)} entries, ${num(x.cpuMs)} ms CPU`;
    figures.push(
      { section: 'delta', name: `${label} direct /min`, value: cell(direct), unit: 'per min', how: `every worker POSTs its ${beatBytes} B beat each second (+${directHead} B request line and headers); receiver CPU ${sig(directCpu, 3)} ms per one-entry ping, sampled over ${o.directSample} requests` },
      { section: 'delta', name: `${label} hbagg full /min`, value: cell(full), unit: 'per min', how: `v1 pings every ${GAP_S} s, parts of ${PART}, to the reference receiver (--no-delta) in its own process; bytes = body + headers` },
      { section: 'delta', name: `${label} hbagg delta /min`, value: cell(delta), unit: 'per min', how: `contract 1.1 over one full_every_ms window (${WINDOW_S} s): ${JSON.stringify(deltaT.modes)} requests by mode; receiver offers deltas` },
    );
    if (churn === 0) {
      const bytesX = direct.bytes / delta.bytes;
      const entriesX = direct.entries / delta.entries;
      const w1000 = w === 1000;
      // Derived from the measured sizes: the same traffic with a full ping every 30 min instead of 5.
      const fullPing = (deltaT.bytesByMode.full ?? 0) / Math.max(1, deltaT.pingsByMode.full ?? 0);
      const deltaPing = (deltaT.bytesByMode.delta ?? 0) / Math.max(1, deltaT.pingsByMode.delta ?? 0);
      const F = 30;
      const bytes30 = (fullPing + (F * 60 / GAP_S - 1) * deltaPing) / F;
      const entries30 = w / F;
      figures.push(
        {
          section: 'delta', name: `${label} direct/delta`, value: `${num(bytesX)}x bytes, ${num(entriesX)}x entries, ${num(direct.req / delta.req)}x req`, unit: 'ratio',
          ...(w1000 ? { target: '>= 500x bytes, >= 1000x entries', ok: bytesX >= 500 && entriesX >= 1000 } : {}),
          how: `full_every_ms 300000: the periodic full ping (${num(fullPing)} B) carries most of it; an empty delta is ${num(deltaPing)} B with headers and lists 0 entries`,
        },
        {
          section: 'delta', name: `${label} direct/delta, full_every_ms 1800000`, value: `${num(direct.bytes / bytes30)}x bytes, ${num(direct.entries / entries30)}x entries`, unit: 'ratio (derived)',
          how: `computed from the measured full (${num(fullPing)} B) and empty delta (${num(deltaPing)} B) sizes: one full ping and ${F * 60 / GAP_S - 1} deltas per ${F} min`,
        },
      );
    }
  };
  for (const w of o.sizes) await run(w, 0);
  for (const w of o.churnSizes) await run(w, 0.1);
  const build = buildCost(10_000, o.buildReps);
  figures.push({
    section: 'delta', name: 'daemon CPU to build a ping, W=10000, 1 change', value: `full ${sig(build.fullMs)} ms, delta ${sig(build.deltaMs, 2)} ms (${num(build.fullMs / build.deltaMs)}x)`,
    unit: 'ms CPU (median)', how: `plan + parts + JSON.stringify of every part, median of ${o.buildReps} builds, one status change before each`,
  });
  return { figures, details: { gap_s: GAP_S, full_every_ms: FULL_EVERY_MS, part_size: PART, beat_bytes: beatBytes, direct_head_bytes: directHead, direct_cpu_ms_per_request: directCpu, rows, build } };
}
