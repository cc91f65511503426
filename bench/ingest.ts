/**
 * Section 1, ingest throughput: the real daemon vs a bare nats.js subscription
 * that only counts (the practical ceiling). Each pair of runs uses the same
 * publisher program and the same pre-encoded messages, back to back, with the
 * order alternating between pairs; the ratio is taken within each pair and
 * the median of the pairs is `ingest_ratio`.
 */
import { newInstance } from './lib/beats.js';
import { startChild } from './lib/child.js';
import type { SectionResult } from './lib/report.js';
import { median, sig } from '../testing/stats.js';

export interface IngestOptions {
  natsUrl: string;
  platformUrl: string;
  pairs: number;
  n: number;
  workers: number;
  /** Directory for `--cpu-prof` output of the `ours` consumers; none when undefined. */
  profileDir?: string;
}

type Mode = 'ours' | 'ceiling';

interface Run {
  pair: number;
  mode: Mode;
  beatsPerSec: number;
  cpuUsPerBeat: number;
  cpuShare: number;
  accepted: number;
  rejected: number;
  publisherMsgsPerSec: number;
  windowWaits: number;
}

const WINDOW = 50_000;
const FLUSH_EVERY = 2_000;
const PROGRESS_EVERY = 2_000;

async function runOnce(o: IngestOptions, pair: number, mode: Mode): Promise<Run> {
  const prefix = `bi${pair}${mode}`;
  const progressSubject = `bench.progress.${prefix}`;
  const flags = mode === 'ours' && o.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`] : [];
  const consumer = startChild(
    'ingest-consumer.ts',
    { mode, natsUrl: o.natsUrl, prefix, platformUrl: o.platformUrl, n: o.n, warmup: Math.floor(o.n / 10), progressSubject, progressEvery: PROGRESS_EVERY },
    flags,
  );
  try {
    await consumer.next('ready', 30_000);
    const publisher = startChild('ingest-publisher.ts', {
      natsUrl: o.natsUrl, prefix, workers: o.workers, n: o.n, instance: newInstance(),
      window: WINDOW, flushEvery: FLUSH_EVERY, progressSubject, deadlineMs: 120_000,
    });
    try {
      const done = await consumer.next<Omit<Run, 'pair' | 'mode' | 'publisherMsgsPerSec' | 'windowWaits'>>('done', 150_000);
      const pub = await publisher.next<{ msgsPerSec: number; windowWaits: number }>('published', 30_000);
      await publisher.exited;
      await consumer.call('stop', undefined, 15_000);
      await consumer.call('exit');
      await consumer.exited;
      return {
        pair, mode, beatsPerSec: done.beatsPerSec, cpuUsPerBeat: done.cpuUsPerBeat, cpuShare: done.cpuShare,
        accepted: done.accepted, rejected: done.rejected, publisherMsgsPerSec: pub.msgsPerSec, windowWaits: pub.windowWaits,
      };
    } finally {
      await publisher.kill();
    }
  } finally {
    await consumer.kill();
  }
}

export async function benchIngest(o: IngestOptions): Promise<SectionResult & { ingestRatio: number }> {
  const runs: Run[] = [];
  for (let pair = 0; pair < o.pairs; pair++) {
    const order: Mode[] = pair % 2 === 0 ? ['ceiling', 'ours'] : ['ours', 'ceiling'];
    for (const mode of order) {
      const r = await runOnce(o, pair, mode);
      runs.push(r);
      process.stderr.write(`  ingest pair ${pair} ${mode}: ${Math.round(r.beatsPerSec)} beats/s\n`);
    }
  }
  const of = (mode: Mode) => runs.filter((r) => r.mode === mode);
  const ratios: number[] = [];
  const cpuRatios: number[] = [];
  for (let pair = 0; pair < o.pairs; pair++) {
    const ours = runs.find((r) => r.pair === pair && r.mode === 'ours') as Run;
    const ceil = runs.find((r) => r.pair === pair && r.mode === 'ceiling') as Run;
    ratios.push(ours.beatsPerSec / ceil.beatsPerSec);
    cpuRatios.push(ours.cpuUsPerBeat / ceil.cpuUsPerBeat);
  }
  const ingestRatio = sig(median(ratios), 3);
  const oursRate = median(of('ours').map((r) => r.beatsPerSec));
  const ceilRate = median(of('ceiling').map((r) => r.beatsPerSec));
  const rejected = of('ours').reduce((n, r) => n + r.rejected, 0);
  const setup =
    `${o.n.toLocaleString('en-US')} pre-encoded beats (${o.workers} workers, ~200 B each) per run from a separate publisher process ` +
    `(flush every ${FLUSH_EVERY}, at most ${WINDOW.toLocaleString('en-US')} ahead of the consumer); timed from message ${Math.floor(o.n / 10)} to the last; ` +
    `median of ${o.pairs} runs`;
  return {
    ingestRatio,
    figures: [
      { section: 'ingest', name: 'hbagg beats/s', value: sig(oursRate), unit: 'beats/s', how: `real Daemon in its own process (NATS, size check, parse, validate, registry); ${setup}` },
      { section: 'ingest', name: 'ceiling beats/s', value: sig(ceilRate), unit: 'msgs/s', how: `bare nats.js callback subscription that only counts, same publisher; ${setup}` },
      { section: 'ingest', name: 'ingest_ratio', value: ingestRatio, unit: 'ours/ceiling', target: '>= 0.5', ok: ingestRatio >= 0.5, how: `median over ${o.pairs} back-to-back pairs (order alternating) of hbagg/ceiling; per pair: ${ratios.map((r) => sig(r, 3)).join(', ')}` },
      { section: 'ingest', name: 'hbagg CPU per beat', value: sig(median(of('ours').map((r) => r.cpuUsPerBeat))), unit: 'us', how: 'process.cpuUsage() of the daemon process over the timed window / beats' },
      { section: 'ingest', name: 'ceiling CPU per msg', value: sig(median(of('ceiling').map((r) => r.cpuUsPerBeat))), unit: 'us', how: 'process.cpuUsage() of the counting process over the timed window / messages' },
      { section: 'ingest', name: 'CPU ratio (ceiling/ours)', value: sig(median(cpuRatios.map((r) => 1 / r)), 3), unit: 'ratio', how: `CPU per message of the bare subscriber / CPU per beat of hbagg, median over pairs: the throughput ratio hbagg would get if both were CPU-bound (the ceiling is partly publisher-bound: publisher median ${sig(median(of('ceiling').map((r) => r.publisherMsgsPerSec)))} msgs/s in ceiling runs; consumer CPU share of one core: hbagg ${sig(median(of('ours').map((r) => r.cpuShare)), 2)}, ceiling ${sig(median(of('ceiling').map((r) => r.cpuShare)), 2)})` },
      { section: 'ingest', name: 'beats rejected', value: rejected, unit: 'beats', target: '0', ok: rejected === 0, how: 'sanity check: every bench beat is valid and in order' },
    ],
    details: {
      n: o.n, workers: o.workers, pairs: o.pairs, window: WINDOW, flush_every: FLUSH_EVERY,
      publisher: 'separate process (bench/ingest-publisher.ts), one per run',
      pair_ratios: ratios.map((r) => sig(r, 4)), cpu_per_beat_ratios: cpuRatios.map((r) => sig(r, 4)),
      runs: runs.map((r) => ({ ...r, beatsPerSec: sig(r.beatsPerSec), cpuUsPerBeat: sig(r.cpuUsPerBeat), cpuShare: sig(r.cpuShare), publisherMsgsPerSec: sig(r.publisherMsgsPerSec) })),
    },
  };
}
