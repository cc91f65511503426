/**
 * Section 2, platform load: W workers beating at 1 Hz for a fixed time, hbagg
 * (one real daemon per W, each with its own platform stub, all W at once)
 * vs the baseline where every worker POSTs its own heartbeat to the platform
 * once per interval. The baseline's requests/min is 60 * W by definition;
 * its bytes per request come from a measured sample of real requests.
 */
import { beatJson, newInstance, workerId } from './lib/beats.js';
import { startChild } from './lib/child.js';
import { startDaemon, stopDaemon } from './lib/daemons.js';
import { startBenchPlatform, type RequestRecord } from './lib/platform.js';
import type { Figure, SectionResult } from './lib/report.js';
import { mean, sig } from '../testing/stats.js';

export interface LoadOptions {
  natsUrl: string;
  sizes: number[];
  durationMs: number;
  baselineSample: number;
}

const INTERVAL_MS = 1000;

/** What one worker would send on its own: its beat, POSTed with the daemon's headers. */
async function measureBaseline(sample: number): Promise<{ bodyBytes: number; headBytes: number; msPerRequest: number }> {
  const platform = await startBenchPlatform();
  try {
    const instance = newInstance();
    const t0 = performance.now();
    for (let i = 0; i < sample; i++) {
      const res = await fetch(platform.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'worker/1.0.0', 'idempotency-key': `${workerId(i)}:${instance}:1` },
        body: beatJson(workerId(i), instance, 1, INTERVAL_MS),
      });
      await res.arrayBuffer();
    }
    const ms = performance.now() - t0;
    return {
      bodyBytes: mean(platform.requests.map((r) => r.bodyBytes)),
      headBytes: mean(platform.requests.map((r) => r.headBytes)),
      msPerRequest: ms / sample,
    };
  } finally {
    await platform.close();
  }
}

interface PerSize {
  workers: number;
  requests: number;
  pings: number;
  bytes: number;
  reqPerMin: number;
  bytesPerMin: number;
  steadyGapMs?: number;
  steadyReqPerMin?: number;
  steadyBytesPerMin?: number;
  published: number;
  accepted: number;
  partsPerPing: number;
}

function summarize(workers: number, reqs: RequestRecord[], from: number, to: number, published: number, accepted: number): PerSize {
  const inWindow = reqs.filter((r) => r.at >= from && r.at <= to);
  const minutes = (to - from) / 60_000;
  const bytes = inWindow.reduce((n, r) => n + r.bodyBytes + r.headBytes, 0);
  const firstParts = new Map<number, RequestRecord>();
  for (const r of inWindow) if (!firstParts.has(r.seq)) firstParts.set(r.seq, r);
  const starts = [...firstParts.values()].map((r) => r.at);
  const gaps = starts.slice(1).map((t, i) => t - (starts[i] as number));
  const partsPerPing = Math.max(...inWindow.map((r) => r.parts), 1);
  const out: PerSize = {
    workers, requests: inWindow.length, pings: firstParts.size, bytes, reqPerMin: inWindow.length / minutes,
    bytesPerMin: bytes / minutes, published, accepted, partsPerPing,
  };
  // Steady state: the gap stopped growing (the last two gaps agree within 10%).
  const [g1, g2] = gaps.slice(-2);
  if (g1 !== undefined && g2 !== undefined && Math.abs(g1 - g2) <= 0.1 * g2 && g2 >= 10_000) {
    const gap = (g1 + g2) / 2;
    const lastPing = inWindow.filter((r) => r.seq === [...firstParts.keys()].at(-1));
    const bytesPerPing = lastPing.reduce((n, r) => n + r.bodyBytes + r.headBytes, 0);
    out.steadyGapMs = gap;
    out.steadyReqPerMin = (lastPing.length * 60_000) / gap;
    out.steadyBytesPerMin = (bytesPerPing * 60_000) / gap;
  }
  return out;
}

export async function benchLoad(o: LoadOptions): Promise<SectionResult> {
  const baseline = await measureBaseline(o.baselineSample);
  const platforms = await Promise.all(o.sizes.map(() => startBenchPlatform()));
  const daemons: Awaited<ReturnType<typeof startDaemon>>[] = [];
  const per: PerSize[] = [];
  try {
    for (const [i, w] of o.sizes.entries()) {
      daemons.push(await startDaemon({ natsUrl: o.natsUrl, prefix: `bl${w}`, platformUrl: (platforms[i] as { url: string }).url, maxWorkers: Math.max(10_000, w), nodeId: `bench-load-${w}` }));
    }
    const loop = startChild('beat-loop.ts', { natsUrl: o.natsUrl, groups: o.sizes.map((w) => ({ prefix: `bl${w}`, workers: w })), durationMs: o.durationMs, intervalMs: INTERVAL_MS });
    const started = await loop.next<{ at: number }>('started', 30_000);
    const done = await loop.next<{ at: number; groups: { workers: number; published: number }[] }>('done', o.durationMs + 30_000);
    await loop.exited;
    for (const [i, w] of o.sizes.entries()) {
      const s = await (daemons[i] as (typeof daemons)[number]).call<{ accepted: number }>('stats');
      const published = done.groups.find((g) => g.workers === w)?.published ?? 0;
      per.push(summarize(w, (platforms[i] as { requests: RequestRecord[] }).requests, started.at, started.at + o.durationMs, published, s.accepted));
    }
  } finally {
    await Promise.all(daemons.map((d) => stopDaemon(d).catch(() => undefined)));
    await Promise.all(platforms.map((p) => p.close()));
  }

  const perRequest = baseline.bodyBytes + baseline.headBytes;
  const figures: Figure[] = [];
  const secs = Math.round(o.durationMs / 1000);
  const rows = per.map((p) => {
    const baseReq = 60 * p.workers * (1000 / INTERVAL_MS);
    const baseBytes = baseReq * perRequest;
    const hbReq = p.steadyReqPerMin ?? p.reqPerMin;
    const hbBytes = p.steadyBytesPerMin ?? p.bytesPerMin;
    return { ...p, baseReq, baseBytes, reqReduction: baseReq / hbReq, bytesReduction: baseBytes / hbBytes };
  });
  for (const r of rows) {
    const steady = r.steadyReqPerMin !== undefined;
    figures.push(
      { section: 'load', name: `W=${r.workers} hbagg req/min (${secs} s run)`, value: sig(r.reqPerMin), unit: 'req/min', how: `requests the stub received while ${r.workers} workers beat at 1 Hz for ${secs} s, from a cold start (includes the first urgent pings and the ramp of the interval); ${r.partsPerPing} part(s) per ping at max_batch_workers 1000` },
      ...(steady ? [{ section: 'load', name: `W=${r.workers} hbagg req/min (steady)`, value: sig(r.steadyReqPerMin as number), unit: 'req/min', how: `parts per ping * 60 s / the gap between the last pings (${sig((r.steadyGapMs as number) / 1000)} s, max_interval_ms reached)` }] : []),
      { section: 'load', name: `W=${r.workers} hbagg bytes/min${steady ? ' (steady)' : ''}`, value: sig(steady ? (r.steadyBytesPerMin as number) : r.bytesPerMin), unit: 'B/min', how: 'request line + headers + body of every request, as received by the stub' },
      { section: 'load', name: `W=${r.workers} baseline req/min`, value: r.baseReq, unit: 'req/min', how: 'every worker POSTs its beat once per second: 60 * W (computed, not sent)' },
      { section: 'load', name: `W=${r.workers} baseline bytes/min`, value: sig(r.baseBytes), unit: 'B/min', how: `60 * W * ${Math.round(perRequest)} B, the mean size of ${o.baselineSample} real single-worker POSTs measured at the stub` },
      { section: 'load', name: `W=${r.workers} reduction`, value: `${sig(r.reqReduction)}x req, ${sig(r.bytesReduction)}x bytes`, unit: 'baseline/hbagg', how: steady ? 'steady state' : `over the ${secs} s run from a cold start (steady state not reached in a run this short)` },
    );
  }
  const reqs = rows.map((r) => r.steadyReqPerMin ?? r.reqPerMin);
  const pings = rows.map((r) => (r.steadyReqPerMin ?? r.reqPerMin) / r.partsPerPing);
  const spread = Math.max(...pings) / Math.min(...pings);
  const steadyAll = rows.every((r) => r.steadyReqPerMin !== undefined);
  figures.push({
    section: 'load', name: `pings/min spread over W${steadyAll ? ' (steady)' : ` (${secs} s cold start)`}`, value: sig(spread), unit: 'max/min',
    target: '~1 (independent of W)', ok: steadyAll ? spread <= 1.2 : undefined,
    how: `logical pings per minute (requests / parts) across W = ${o.sizes.join(', ')}: ${pings.map((p) => sig(p)).join(', ')}; HTTP requests also grow with ceil(W / max_batch_workers): ${reqs.map((p) => sig(p)).join(', ')}${steadyAll ? '' : '; judged only in steady state (the full run): a cold start is dominated by the first urgent pings, fewer when a ping takes longer'}`,
  });
  return {
    figures,
    details: {
      duration_ms: o.durationMs, interval_ms: INTERVAL_MS, baseline: { ...baseline, sample: o.baselineSample, how: 'sent one by one with fetch (keep-alive) to a stub; body = the worker\'s beat JSON' },
      concurrency: 'one daemon process per W, all W measured at the same time against one nats-server, one beat-loop process publishing for all',
      per_size: rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' ? sig(v, 4) : v]))),
    },
  };
}
