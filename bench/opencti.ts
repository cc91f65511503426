/**
 * Section "opencti": what OpenCTI receives for 10, 100 and 1,000 connectors
 * on one node, from pycti's own ping threads (one pingConnector per connector
 * every 40 s: computed, n x 1.5 per minute) against hbagg's OpenCTI adapter
 * with 1 and with 25 aliases per document (measured).
 *
 * Measured with the real adapter (OpenCtiPinger, Registry) against the real
 * GraphQL stub (graphql-js with graphql-no-alias, as OpenCTI validates),
 * with time compressed: the period is `periodMs` instead of 120000 and the
 * stub's "5 minutes" shrinks with it; counts per period are then expressed
 * per minute at the default period. Restart and rolling-restart costs are
 * request counts, which compression does not change.
 */
import { Writable } from 'node:stream';
import { createLogger } from '../src/daemon/logger.js';
import { Metrics } from '../src/daemon/metrics.js';
import { META } from '../src/daemon/opencti/connector-map.js';
import { GraphqlClient } from '../src/daemon/opencti/graphql-client.js';
import { OpenCtiPinger } from '../src/daemon/opencti/opencti-pinger.js';
import { Registry } from '../src/core/registry.js';
import type { Instant } from '../src/core/time.js';
import { startOpenCtiStub, type OpenCtiStub } from '../testing/opencti-stub.js';
import type { Figure, SectionResult } from './lib/report.js';
import { sig } from '../testing/index.js';

export interface OpenCtiBenchOptions {
  sizes: number[];
  /** The compressed period (stands for 120000). */
  periodMs: number;
  /** Periods measured after one and a half of warm-up. */
  periods: number;
  /** Connectors restarted one by one in the rolling measurement. */
  rolling: number;
}

const REAL_PERIOD = 120_000;
const PYCTI_EVERY_S = 40;
const uuid = (n: number) => `0b0b0b0b-0000-4000-8000-${String(n).padStart(12, '0')}`;
const now = (): Instant => ({ wall: Date.now(), mono: performance.now() });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Rig {
  stub: OpenCtiStub;
  registry: Registry;
  pinger: OpenCtiPinger;
  beat(i: number, instance: string, withState: boolean): void;
  leave(i: number, instance: string): void;
  close(): Promise<void>;
}

async function rig(n: number, aliases: number, periodMs: number): Promise<Rig> {
  const stub = await startOpenCtiStub({ mutationDefault: aliases, inactiveAfterMs: periodMs * 2.5 });
  for (let i = 0; i < n; i++) stub.register(uuid(i), { state: '{"last_run":1}' });
  const registry = new Registry({ maxWorkers: 100_000, lostAfterMinMs: 3_600_000, tombstoneRetentionMs: 600_000, maxTombstones: 100_000, defaultDrainTimeoutMs: 30_000 });
  const metrics = new Metrics({ workersByState: () => registry.countByState(), currentIntervalMs: () => 0, tombstones: () => 0, droppedDisplaced: () => 0, tombstonesEvictedEarly: () => 0 }, { defaultMetrics: false });
  const log = createLogger('warn', new Writable({ write: (_c, _e, done) => done() }));
  const pinger = new OpenCtiPinger({
    registry, metrics, log, clock: now,
    client: new GraphqlClient({ url: stub.url, timeoutMs: 5000, userAgent: 'hbagg-bench' }),
    config: { pingEveryMs: periodMs, aliasesPerRequest: aliases, deleteOnStop: false, connectors: {}, inactiveAfterMs: periodMs * 2.5 },
    gate: { minIntervalMs: 1000, maxIntervalMs: 30_000, maxRetryAfterMs: 600_000 },
    requestTimeoutMs: 5000, urgentFlushMs: 50,
  });
  let seq = 0;
  return {
    stub, registry, pinger,
    beat(i, instance, withState) {
      const meta: Record<string, string> = { [META.id]: uuid(i) };
      if (withState) meta[META.state] = '{"last_run":2}';
      registry.applyBeat({ v: 1, worker: `c${i}`, instance, seq: ++seq, interval_ms: 60_000, meta }, now());
    },
    leave(i, instance) {
      registry.applyLeave({ v: 1, worker: `c${i}`, instance, seq: ++seq, phase: 'stopped' }, now());
      pinger.urgent();
    },
    close: async () => {
      await pinger.stop(performance.now() + 2000);
      await stub.close();
    },
  };
}

const pingCalls = (stub: OpenCtiStub, from: number) =>
  stub.calls.filter((c) => c.at >= from).reduce((k, c) => k + c.fields.filter((f) => f === 'pingConnector').length, 0);

/** Steady state, then a node restart (everything appears at once), then a rolling restart. */
async function measure(n: number, aliases: number, opts: OpenCtiBenchOptions) {
  // One request per connector and period must fit what this (shared, loaded) machine serves: compress less for many.
  const o = { ...opts, periodMs: Math.max(opts.periodMs, n * 12) };
  // Node restart: all connectors appear at once. Workers that report their state need no read first.
  const restart: Record<string, number> = {};
  for (const withState of [false, true]) { // the read-first restart on its own rig; the other one goes on to steady state
    const r = await rig(n, aliases, o.periodMs);
    r.pinger.start();
    const t0 = Date.now();
    for (let i = 0; i < n; i++) r.beat(i, 'i1', withState);
    r.pinger.urgent();
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline && ![...Array(n).keys()].every((i) => r.stub.pingsOf(uuid(i)).length > 0)) await sleep(20);
    restart[withState ? 'requests_state_reported' : 'requests_state_read'] = r.stub.calls.filter((c) => c.at >= t0).length;
    restart[withState ? 'ms_state_reported' : 'ms_state_read'] = Date.now() - t0;
    if (!withState) {
      await r.close();
      continue;
    }
    // Steady state, after the first burst and the spreading period.
    await sleep(o.periodMs * 1.5);
    const from = Date.now();
    let inactive = 0;
    while (Date.now() - from < o.periodMs * o.periods) {
      for (let i = 0; i < n; i++) if (!r.stub.active(uuid(i))) inactive++;
      await sleep(Math.max(50, o.periodMs / 20));
    }
    const requests = r.stub.calls.filter((c) => c.at >= from).length;
    const pings = pingCalls(r.stub, from);
    const perMinute = (k: number) => (k / o.periods) * (60_000 / REAL_PERIOD);
    // Rolling restart: each connector stops (Leave stopped) and comes back as a new instance, one after another.
    const rolled = Math.min(n, o.rolling);
    const perRestart: number[] = [];
    for (let i = 0; i < rolled; i++) {
      const id = uuid(i);
      r.leave(i, 'i1');
      await sleep(60);
      const before = r.stub.calls.filter((c) => c.ids.includes(id)).length;
      const pinged = r.stub.pingsOf(id).length;
      r.beat(i, 'i2', false); // a restarted worker that has not reported its state yet: read, then ping
      r.pinger.urgent();
      const until = Date.now() + 10_000;
      while (Date.now() < until && r.stub.pingsOf(id).length === pinged) await sleep(10);
      perRestart.push(r.stub.calls.filter((c) => c.ids.includes(id)).length - before);
    }
    await r.close();
    return {
      periodMs: o.periodMs, requestsPerMin: perMinute(requests), pingsPerMin: perMinute(pings), inactiveSamples: inactive,
      restart, rollingRequestsPerRestart: perRestart.reduce((a, b) => a + b, 0) / Math.max(1, perRestart.length), rolled,
    };
  }
  throw new Error('unreachable');
}

export async function benchOpenCti(o: OpenCtiBenchOptions): Promise<SectionResult> {
  const figures: Figure[] = [];
  const details: Record<string, unknown> = { period_ms_compressed: o.periodMs, stands_for_ms: REAL_PERIOD, periods: o.periods };
  const how = (periodMs: number) => `real adapter and GraphQL stub, period compressed to ${periodMs} ms (stands for 120000), ${o.periods} periods after 1.5 of warm-up, expressed per minute at ping_every_ms 120000`;
  for (const n of o.sizes) {
    const pycti = (n * 60) / PYCTI_EVERY_S;
    figures.push({ section: 'opencti', name: `${n} connectors: pycti threads`, value: pycti, unit: 'req/min', how: `computed: one pingConnector request per connector every ${PYCTI_EVERY_S} s` });
    for (const aliases of [1, 25]) {
      process.stderr.write(`  opencti: ${n} connectors, ${aliases} alias(es)...\n`);
      const m = await measure(n, aliases, o);
      details[`n${n}_a${aliases}`] = m;
      // --only runs do not write results.json: the details go to stderr too.
      process.stderr.write(`  ${JSON.stringify({ connectors: n, aliases, ...m })}\n`);
      figures.push(
        { section: 'opencti', name: `${n} connectors: hbagg, ${aliases} alias${aliases > 1 ? 'es' : ''}`, value: sig(m.requestsPerMin), unit: 'req/min', target: `< pycti (${pycti})`, ok: m.requestsPerMin < pycti, how: `${how(m.periodMs)}; pingConnector calls ${sig(m.pingsPerMin)}/min; connector-samples seen inactive: ${m.inactiveSamples}` },
        { section: 'opencti', name: `${n} connectors: node restart, hbagg ${aliases}`, value: m.restart.requests_state_reported ?? NaN, unit: 'requests', how: `requests until every connector had its first ping, all appearing at once, states reported in meta (${m.restart.ms_state_reported} ms); without reported states (read first): ${m.restart.requests_state_read} requests, ${m.restart.ms_state_read} ms. pycti: ${3 * n} (deleteConnector on stop, registerConnector and a ping on start)` },
        { section: 'opencti', name: `${n} connectors: rolling restart, hbagg ${aliases}`, value: sig(m.rollingRequestsPerRestart), unit: 'requests/connector', how: `requests naming the connector from its Leave stopped to its first ping as a new instance (state not yet reported: read + ping), mean over ${m.rolled} connectors restarted one after another; pycti: 3 (delete, register, ping); with delete_on_stop: +1` },
      );
    }
  }
  return { figures, details };
}
