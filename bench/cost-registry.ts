/**
 * Cost per tracked worker, measured on the core alone (run with --expose-gc,
 * one process per size so sizes do not share a heap):
 * - memory: heap (and RSS) after a full GC, before and after N workers each
 *   sent one realistic beat, decoded exactly as NATS beats are; the median
 *   over several registries of N in one warmed-up process;
 * - CPU per beat: decode + apply, and apply alone, over rounds of beats;
 * - CPU per ping: collect + buildPing + JSON.stringify of every part.
 */
import { buildPing } from '../src/core/batch.js';
import { Registry } from '../src/core/registry.js';
import type { Instant } from '../src/core/time.js';
import { decodeBeat } from '../src/protocol/decode.js';
import type { Beat } from '../src/protocol/schemas.js';
import { beatJson, encoder, newInstance, workerId } from './lib/beats.js';
import { childArg, emit, fullGc } from './lib/child.js';
import { median } from '../testing/stats.js';

interface Arg {
  n: number;
  /** Beats timed in total (rounds over all workers). */
  beats: number;
}

const { n, beats } = childArg<Arg>();
if (!(globalThis as { gc?: unknown }).gc) throw new Error('run with --expose-gc');
const now = (): Instant => ({ wall: Date.now(), mono: performance.now() });
// Every worker its own instance id, as real workers have.
const base = newInstance();
const ids = Array.from({ length: n }, (_, i) => workerId(i));
const instances = ids.map((_, i) => `${base}-${i}`);
const encodeRound = (seq: number) => ids.map((w, i) => encoder.encode(beatJson(w, instances[i] as string, seq, 1000)));

const options = (maxWorkers: number) => ({
  maxWorkers, lostAfterMinMs: 3000, tombstoneRetentionMs: 600_000, maxTombstones: 100_000, defaultDrainTimeoutMs: 30_000,
});

/** N workers each send one beat into `registry`, decoded as NATS beats are. */
function fill(registry: Registry, payloads: Uint8Array[]): void {
  for (let i = 0; i < n; i++) {
    const d = decodeBeat(payloads[i] as Uint8Array, ids[i]);
    if (!d.ok) throw new Error(d.error);
    const out = registry.applyBeat(d.value, now());
    if (!out.ok) throw new Error(out.error);
  }
}

// Warm-up: 20k workers on a throw-away registry (kept alive), so compiled code and
// V8's allocation-site feedback, first-use costs of a process, are not counted per worker.
const warm = new Registry(options(20_000));
for (let i = 0; i < 20_000; i++) {
  const d = decodeBeat(encoder.encode(beatJson(`warm-${i}`, `${base}-warm-${i}`, 1, 1000)), `warm-${i}`);
  if (d.ok) warm.applyBeat(d.value, now());
}
warm.collect();

// Several registries of N, each measured on its own (all kept alive): the median is the figure.
const steps = n <= 1_000 ? 9 : n <= 10_000 ? 5 : 3;
const perStep: number[] = [];
const rssPerStep: number[] = [];
const kept: Registry[] = [];
let registry = new Registry(options(n));
for (let step = 0; step < steps; step++) {
  registry = new Registry(options(n));
  kept.push(registry);
  fullGc();
  const before = process.memoryUsage();
  // The payloads are made and dropped inside the measurement: only what the registry keeps remains.
  fill(registry, encodeRound(1));
  fullGc();
  const after = process.memoryUsage();
  perStep.push((after.heapUsed - before.heapUsed) / n);
  rssPerStep.push((after.rss - before.rss) / n);
}
let payloads: Uint8Array[];
if (registry.size !== n) throw new Error(`tracked ${registry.size}, expected ${n}`);

const rounds = Math.max(1, Math.round(beats / n));
let decodeApplyUs = 0;
let applyUs = 0;
let wallMs = 0;
for (let r = 0; r < rounds; r++) {
  payloads = encodeRound(2 * r + 2);
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  for (let i = 0; i < n; i++) {
    const d = decodeBeat(payloads[i] as Uint8Array, ids[i]);
    if (!d.ok || !registry.applyBeat(d.value, now()).ok) throw new Error('beat refused');
  }
  wallMs += performance.now() - w0;
  const c1 = process.cpuUsage(c0);
  decodeApplyUs += c1.user + c1.system;
  // Apply alone: the same beats decoded beforehand.
  const decoded: Beat[] = encodeRound(2 * r + 3).map((p, i) => {
    const d = decodeBeat(p, ids[i]);
    if (!d.ok) throw new Error(d.error);
    return d.value;
  });
  const c2 = process.cpuUsage();
  for (let i = 0; i < n; i++) if (!registry.applyBeat(decoded[i] as Beat, now()).ok) throw new Error('beat refused');
  const c3 = process.cpuUsage(c2);
  applyUs += c3.user + c3.system;
}

const info = { node: 'bench', instance: base, version: '0', startedAt: Date.now() };
const pingRounds = Math.max(3, Math.min(20, Math.round(200_000 / n)));
const c4 = process.cpuUsage();
let pingBytes = 0;
for (let r = 0; r < pingRounds; r++) {
  const { workers, sent } = registry.collect();
  for (const part of buildPing(info, { seq: r + 1, workers, sent, partSize: 1000, sentAt: Date.now(), nextPingWithinMs: 30_000, final: false })) {
    pingBytes += JSON.stringify(part.body).length;
  }
}
const c5 = process.cpuUsage(c4);

emit('result', {
  n,
  heapBytesPerWorker: median(perStep),
  heapBytesPerWorkerSteps: perStep.map((x) => Math.round(x)),
  rssBytesPerWorker: median(rssPerStep),
  beatsTimed: rounds * n,
  decodeApplyUsPerBeat: decodeApplyUs / (rounds * n),
  decodeApplyBeatsPerSec: (rounds * n) / (wallMs / 1000),
  applyUsPerBeat: applyUs / (rounds * n),
  pingMs: (c5.user + c5.system) / 1000 / pingRounds,
  pingBytesPerWorker: pingBytes / pingRounds / n,
});
process.exit(0);
