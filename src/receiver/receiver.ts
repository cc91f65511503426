/**
 * `createReceiver`: the platform side as a library. The result is a node:http
 * request handler (mount it in node:http, Express or Fastify) that takes
 * pings on POST to any path and answers the query and probe routes, plus the
 * ledger's queries, an event hook and `close()`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Instant } from '../core/time.js';
import type { Ping, WorkerState } from '../protocol/schemas.js';
import { StepRunner } from '../util/index.js';
import { DeltaViews } from './delta.js';
import type { LedgerOptions, ReceiverEvent } from './ledger.js';
import { createMetrics } from './metrics.js';
import { authorized, parsePing, readBody, type Answer } from './ping-request.js';
import { memoryStore } from './store/memory.js';
import { StoreUnavailableError, type ReceiverStore } from './store/types.js';
import { byNode, nodeView, workerViews, WORKER_STATES, type NodeView, type WorkerView } from './views.js';
import { Writer } from './writer.js';

export interface ReceiverLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ReceiverLimits {
  /** Bodies over this get 413. Default 16 MiB. */
  maxBodyBytes?: number;
  /** Compare-and-set tries per change before answering 503. Default 12. */
  maxAttempts?: number;
}

export interface CreateReceiverOptions {
  /** Default: the in-memory store (one process). `jetstreamStore(...)` shares the ledger between replicas. */
  store?: ReceiverStore;
  /** When set, pings and the `/v1` routes need `authorization: Bearer <one of them>` (401 otherwise). */
  tokens?: string | readonly string[];
  /**
   * Offer delta pings (docs/PROTOCOL.md 3.1) in every 2xx answer, and check them. Default true.
   * A node's delta view lives in the replica that took its last full ping: behind a load
   * balancer without affinity, a delta that reaches another replica gets a 409 and the daemon
   * sends a full ping (correct, just not smaller); use affinity by node or `delta: false`.
   */
  delta?: boolean;
  /** Called with every ping (part) applied, its size in bytes and the answer's body (tests and benches). */
  onPing?(ping: Ping, bytes: number, answer: Record<string, unknown>): void;
  /** Sent in every 2xx answer as `{"next_interval_ms": N}`: a floor on the daemon's ping gap. */
  nextIntervalMs?: number;
  /** Sent as `Retry-After` (seconds) with a 503 when the store does not answer. Default 2. */
  retryAfterSeconds?: number;
  /** How often leases are checked. Default 250. */
  leaseCheckMs?: number;
  /** A node expired or final for this long after its last ping is deleted from the store. Default 86400000 (a day). */
  forgetNodesAfterMs?: number;
  /** Defaults to the process clocks. Leases use the wall clock: replicas share them. */
  clock?: () => Instant;
  logger?: ReceiverLogger;
  limits?: ReceiverLimits;
  ledger?: LedgerOptions;
  /** Called once per event this replica wrote, in order (also `receiver.on('event', fn)`). */
  onEvent?(event: ReceiverEvent): void;
}

export interface ReceiverCounts {
  pings: number;
  beats: number;
  duplicates: number;
  /** Requests answered 4xx (a 409 to a delta included). */
  rejected: number;
  unavailable: number;
  /** Entries listed over applied pings, and the bytes of their bodies. */
  entries: number;
  bytes: number;
  /** Applied parts by mode (`v1`: no mode). */
  modes: { full: number; delta: number; v1: number };
  /** Deltas refused unapplied (409) and roster mismatches answered `resync: true`. */
  conflicts: number;
  resyncs: number;
}

export interface ReceiverHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  readonly store: ReceiverStore;
  nodes(): NodeView[];
  node(id: string): (NodeView & { workers: WorkerView[] }) | undefined;
  workers(state?: WorkerState): WorkerView[];
  /** Subscribes to events; returns the unsubscribe function. */
  on(type: 'event', listener: (event: ReceiverEvent) => void): () => void;
  /** True when the store answers. */
  ready(): Promise<boolean>;
  counts(): ReceiverCounts;
  /** Prometheus text of the receiver's own registry. */
  metrics(): Promise<string>;
  /** Stops the lease timer and closes the store. Safe to call twice. */
  close(): Promise<void>;
}

const silent: ReceiverLogger = { info: () => undefined, warn: () => undefined };

export async function createReceiver(opts: CreateReceiverOptions = {}): Promise<ReceiverHandler> {
  const store = opts.store ?? memoryStore();
  const clock = opts.clock ?? (() => ({ wall: Date.now(), mono: performance.now() }));
  const log = opts.logger ?? silent;
  const tokens = (typeof opts.tokens === 'string' ? [opts.tokens] : (opts.tokens ?? [])).map((t) => Buffer.from(t, 'utf8'));
  const maxBody = opts.limits?.maxBodyBytes ?? 16 * 1024 * 1024;
  const retryAfter = String(opts.retryAfterSeconds ?? 2);
  const listeners = new Set<(e: ReceiverEvent) => void>();
  if (opts.onEvent) listeners.add(opts.onEvent);
  const emit = (events: readonly ReceiverEvent[]) => {
    for (const e of events) for (const l of listeners) l(e);
  };
  const counts: ReceiverCounts = {
    pings: 0, beats: 0, duplicates: 0, rejected: 0, unavailable: 0, entries: 0, bytes: 0, modes: { full: 0, delta: 0, v1: 0 }, conflicts: 0, resyncs: 0,
  };
  const views = opts.delta === false ? undefined : new DeltaViews();
  const gate = views === undefined ? undefined : (p: Ping) => views.apply(p);
  const metrics = createMetrics(() => store.all());
  const writer = new Writer({
    store, metrics, ledger: opts.ledger ?? {}, maxAttempts: opts.limits?.maxAttempts ?? 12, outboxGraceMs: 2_000,
    forgetAfterMs: opts.forgetNodesAfterMs ?? 86_400_000, emit, log,
  });

  await store.start();

  const reject = (answer: Answer): Answer => {
    counts.rejected++;
    metrics.rejected.inc({ status: answer.status });
    const error = String((answer.body as { error?: unknown }).error);
    emit([{ type: 'request', change: 'rejected', at: clock().wall, status: answer.status, error }]);
    return answer;
  };

  const okBody: Record<string, unknown> = { ok: true };
  if (opts.nextIntervalMs !== undefined) okBody.next_interval_ms = opts.nextIntervalMs;
  if (views !== undefined) okBody.delta = true;
  const handlePing = async (req: IncomingMessage): Promise<Answer> => {
    if (!authorized(req, tokens)) return reject({ status: 401, body: { error: 'missing or wrong authorization: expected "Bearer <token>"' } });
    const raw = await readBody(req, maxBody);
    if ('tooLarge' in raw) return reject({ status: 413, body: { error: `body is ${raw.tooLarge} bytes, at most ${maxBody}` } });
    const text = raw.text;
    const parsed = parsePing(req, text);
    if (!parsed.ok) return reject(parsed.answer);
    const t = clock();
    const started = performance.now();
    let body = okBody;
    try {
      const result = await writer.apply(parsed.ping, t, gate);
      if (result.outcome === 'duplicate') {
        counts.duplicates++;
        metrics.duplicates.inc();
      } else if (result.outcome === 'refused') {
        counts.conflicts++;
        // Not applied: a 409 asks for a full ping at once.
        return reject({ status: 409, body: { error: result.reason, resync: true, delta: true } });
      } else {
        const ping = parsed.ping;
        counts.pings++;
        metrics.applied.inc();
        counts.modes[ping.batch.mode ?? 'v1']++;
        counts.entries += ping.workers.length;
        counts.bytes += Buffer.byteLength(text);
        for (const w of ping.workers) counts.beats += w.beats;
        if (result.verdict?.kind === 'applied' && result.verdict.resync) {
          counts.resyncs++;
          body = { ...okBody, resync: true, ...(result.verdict.reason === undefined ? {} : { reason: result.verdict.reason }) };
        }
        opts.onPing?.(ping, Buffer.byteLength(text), body);
      }
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      counts.unavailable++;
      metrics.unavailable.inc();
      log.warn({ err: err.message, node: parsed.ping.node }, 'store unavailable: ping refused with 503');
      return { status: 503, body: { error: `store unavailable: ${err.message}` }, headers: { 'retry-after': retryAfter } };
    } finally {
      metrics.applySeconds.observe((performance.now() - started) / 1000);
    }
    return { status: 200, body };
  };

  const queries = {
    nodes: () => [...store.all()].map((s) => nodeView(s.record)).sort(byNode),
    node: (id: string) => {
      const r = store.cached(id)?.record;
      return r === undefined ? undefined : { ...nodeView(r), workers: workerViews(r) };
    },
    workers: (state?: WorkerState) =>
      [...store.all()].sort((a, b) => byNode(a.record, b.record)).flatMap((s) => workerViews(s.record))
        .filter((w) => state === undefined || (w.state === state && w.current)),
  };
  const ready = () => store.check().then(() => true, () => false);

  const route = async (req: IncomingMessage): Promise<Answer | 'metrics'> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    if (req.method === 'POST') return handlePing(req);
    if (req.method !== 'GET') return { status: 405, body: { error: `${req.method} is not supported: POST pings, GET queries` } };
    if (path === '/livez' || path === '/healthz') return { status: 200, body: { status: 'ok' } };
    if (path === '/readyz') {
      const ok = await ready();
      return { status: ok ? 200 : 503, body: { status: ok ? 'ok' : 'fail', checks: { store: ok ? 'ok' : 'fail' } } };
    }
    if (path === '/metrics') return 'metrics';
    if (path.startsWith('/v1/') && !authorized(req, tokens)) return reject({ status: 401, body: { error: 'missing or wrong authorization: expected "Bearer <token>"' } });
    if (path === '/v1/nodes') return { status: 200, body: { nodes: queries.nodes() } };
    if (path.startsWith('/v1/nodes/')) {
      const id = decodeURIComponent(path.slice('/v1/nodes/'.length));
      const n = queries.node(id);
      return n === undefined ? { status: 404, body: { error: `no node ${JSON.stringify(id)}` } } : { status: 200, body: n };
    }
    if (path === '/v1/workers') {
      const state = url.searchParams.get('state') ?? undefined;
      if (state !== undefined && !WORKER_STATES.includes(state as WorkerState)) {
        return { status: 400, body: { error: `state must be one of ${WORKER_STATES.join(', ')}, got ${JSON.stringify(state)}` } };
      }
      return { status: 200, body: { workers: queries.workers(state as WorkerState | undefined) } };
    }
    return { status: 404, body: { error: `POST pings to any path; GET /v1/nodes, /v1/nodes/<node>, /v1/workers?state=, /livez, /readyz, /metrics (got GET ${path})` } };
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    route(req).then(
      async (answer) => {
        if (answer === 'metrics') {
          const text = await metrics.registry.metrics();
          res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text);
        } else send(res, answer);
      },
      (err: unknown) => send(res, { status: 500, body: { error: (err as Error).message } }),
    ).catch(() => res.destroy());
  };

  // Sweeps never overlap: a slow store makes the next one wait.
  let sweeping: Promise<void> | undefined;
  const timer = setInterval(() => {
    sweeping ??= writer.sweep(clock()).catch((err: unknown) => log.warn({ err: (err as Error).message }, 'lease sweep failed'))
      .finally(() => (sweeping = undefined));
  }, opts.leaseCheckMs ?? 250);
  timer.unref();

  let closing: Promise<void> | undefined;
  return Object.assign(handler, {
    store,
    ...queries,
    on(_type: 'event', listener: (e: ReceiverEvent) => void) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    ready,
    counts: () => ({ ...counts, modes: { ...counts.modes } }),
    metrics: () => metrics.registry.metrics(),
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        const steps = new StepRunner();
        await steps.run('sweep', () => sweeping, 2_000);
        await steps.run('store', () => store.close(), 5_000);
      })();
      return closing;
    },
  });
}

function send(res: ServerResponse, answer: Answer): void {
  const body = JSON.stringify(answer.body);
  res.writeHead(answer.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...answer.headers });
  res.end(body);
}
