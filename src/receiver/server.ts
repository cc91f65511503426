/**
 * The reference platform receiver: the platform side of docs/PROTOCOL.md section 3,
 * small enough to read in one sitting. It validates every ping against the
 * same zod schema the daemon builds it with, answers like a well-behaved
 * platform, deduplicates by `idempotency-key`, and keeps each node's lease.
 * What it learns comes out as `ReceiverEvent`s (see `ledger.ts`).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Instant } from '../core/time.js';
import { formatIssues } from '../protocol/decode.js';
import { Ping, PROTOCOL_VERSION, type WorkerState } from '../protocol/schemas.js';
import { Ledger, type NodeLease, type ReceiverEvent } from './ledger.js';

export interface ReceiverOptions {
  /** Default 0: any free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Sent in every 2xx answer as `{"next_interval_ms": N}`: a floor on the daemon's ping gap. */
  nextIntervalMs?: number;
  /** When set, pings need `authorization: Bearer <token>` (401 otherwise). */
  token?: string;
  /** Called once per event, in order. */
  onEvent?(event: ReceiverEvent): void;
  /** Called with every ping (part) applied, its size in bytes and the answer's body (tests and benches). */
  onPing?(ping: Ping, bytes: number, answer: Record<string, unknown>): void;
  /** How often leases are checked. Default 100. */
  leaseCheckMs?: number;
  /** Bodies over this get 413. Default 16 MiB. */
  maxBodyBytes?: number;
  /** Defaults to the process clocks. */
  clock?: () => Instant;
  /** Offer delta pings (contract 1.6) in every 2xx answer, and check them. Default true. */
  delta?: boolean;
}

export interface ReceiverStats {
  /** Pings (parts) accepted, duplicates not counted. */
  pings: number;
  /** Sum of `beats` over accepted pings: every beat the daemon accepted, once. */
  beats: number;
  /** Requests answered 4xx (a 409 to a delta included). */
  rejected: number;
  /** Entries listed over accepted pings, and the bytes of their bodies. */
  entries: number;
  bytes: number;
  /** Accepted parts by mode (`v1`: no mode). */
  modes: { full: number; delta: number; v1: number };
  /** Deltas refused unapplied (409) and roster mismatches answered `resync: true`. */
  conflicts: number;
  resyncs: number;
  /** Requests whose idempotency-key was already answered. */
  duplicates: number;
  nodes: { alive: number; expired: number; final: number };
  /** Current worker instances by state, over all nodes. */
  workers: Record<WorkerState, number>;
  /** Events seen, by `type.change` (e.g. `worker.draining`). */
  events: Record<string, number>;
  /** The last accepted ping's lease. */
  lastLeaseMs?: number;
}

export interface Receiver {
  /** `http://host:port`; pings go to any path under it (e.g. `/v1/heartbeats`). */
  readonly url: string;
  readonly port: number;
  /** The most recent events, oldest first (at most 1000). */
  readonly events: readonly ReceiverEvent[];
  stats(): ReceiverStats;
  nodes(): NodeLease[];
  /** Stops listening. Safe to call twice. */
  close(): Promise<void>;
}

const MAX_EVENTS = 1000;
const MAX_KEYS = 10_000;

type Answer = { status: number; body: unknown };

export async function startReceiver(opts: ReceiverOptions = {}): Promise<Receiver> {
  const clock = opts.clock ?? (() => ({ wall: Date.now(), mono: performance.now() }));
  const maxBody = opts.maxBodyBytes ?? 16 * 1024 * 1024;
  const offerDelta = opts.delta !== false;
  const ledger = new Ledger({ delta: offerDelta });
  const events: ReceiverEvent[] = [];
  const counts: Record<string, number> = {};
  // Answers by idempotency-key, oldest first, so a replay gets the same answer.
  const answered = new Map<string, Answer>();
  const stats = {
    pings: 0, beats: 0, rejected: 0, duplicates: 0, entries: 0, bytes: 0, conflicts: 0, resyncs: 0,
    modes: { full: 0, delta: 0, v1: 0 }, lastLeaseMs: undefined as number | undefined,
  };

  const emit = (list: readonly ReceiverEvent[]) => {
    for (const e of list) {
      events.push(e);
      if (events.length > MAX_EVENTS) events.shift();
      const key = `${e.type}.${e.change}`;
      counts[key] = (counts[key] ?? 0) + 1;
      opts.onEvent?.(e);
    }
  };

  const reject = (status: number, error: string, extra: Record<string, unknown> = {}): Answer => {
    stats.rejected++;
    emit([{ type: 'request', change: 'rejected', at: clock().wall, status, error }]);
    return { status, body: { error, ...extra } };
  };

  const handlePing = (req: IncomingMessage, text: string): Answer => {
    if (opts.token !== undefined && req.headers.authorization !== `Bearer ${opts.token}`) {
      return reject(401, 'missing or wrong authorization: expected "Bearer <token>"');
    }
    const type = req.headers['content-type'] ?? '';
    if (!/^application\/json\b/i.test(type)) {
      return reject(415, `content-type must be application/json, got ${JSON.stringify(type)}`);
    }
    const key = req.headers['idempotency-key'];
    if (typeof key !== 'string' || key === '') {
      return reject(400, 'missing idempotency-key header (it must equal batch.id)');
    }
    const replay = answered.get(key);
    if (replay !== undefined) {
      stats.duplicates++;
      return replay;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return reject(400, `body is not JSON: ${(err as Error).message}`);
    }
    const v = (value as { v?: unknown } | null)?.v;
    if (typeof value === 'object' && value !== null && v !== PROTOCOL_VERSION) {
      return reject(400, `v: version ${JSON.stringify(v)} is not supported (expected ${PROTOCOL_VERSION})`);
    }
    const parsed = Ping.safeParse(value);
    if (!parsed.success) {
      const issues = parsed.error.issues.slice(0, 20).map((i) => formatIssues([i]));
      return reject(400, `invalid ping: ${issues.slice(0, 5).join('; ')}`, { issues });
    }
    const ping = parsed.data;
    const problem = checkPing(ping, key);
    if (problem !== undefined) return reject(400, `invalid ping: ${problem}`);

    const t = clock();
    const { events: learned, verdict } = ledger.receive(ping, t);
    if (verdict?.kind === 'conflict') {
      stats.conflicts++;
      // Not applied: a 409 asks for a full ping at once; cached like any answer.
      const refused = reject(409, verdict.reason, { resync: true, delta: true });
      answered.set(key, refused);
      return refused;
    }
    emit(learned);
    stats.pings++;
    stats.modes[ping.batch.mode ?? 'v1']++;
    stats.entries += ping.workers.length;
    stats.bytes += Buffer.byteLength(text);
    stats.lastLeaseMs = ping.batch.next_ping_within_ms;
    for (const w of ping.workers) stats.beats += w.beats;
    const body: Record<string, unknown> = { ok: true };
    if (opts.nextIntervalMs !== undefined) body.next_interval_ms = opts.nextIntervalMs;
    if (offerDelta) body.delta = true;
    if (verdict?.kind === 'applied' && verdict.resync) {
      stats.resyncs++;
      body.resync = true;
      body.reason = verdict.reason;
    }
    const answer: Answer = { status: 200, body };
    opts.onPing?.(ping, Buffer.byteLength(text), body);
    answered.set(key, answer);
    if (answered.size > MAX_KEYS) answered.delete(answered.keys().next().value as string);
    return answer;
  };

  const route = (req: IncomingMessage, text: string): Answer => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method === 'POST') return handlePing(req, text);
    if (req.method === 'GET' && path === '/healthz') return { status: 200, body: { status: 'ok' } };
    if (req.method === 'GET' && path === '/v1/nodes') {
      return { status: 200, body: { nodes: ledger.nodeList(), workers: ledger.workerList() } };
    }
    return { status: 404, body: { error: `POST pings to any path; GET /healthz or /v1/nodes (got ${req.method} ${path})` } };
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBody) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => {
      let answer: Answer;
      try {
        answer = tooLarge
          ? reject(413, `body is ${size} bytes, at most ${maxBody}`)
          : route(req, Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        answer = { status: 500, body: { error: (err as Error).message } };
      }
      send(res, answer);
    });
    req.on('error', () => res.destroy());
  });
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;

  const leaseTimer = setInterval(() => emit(ledger.expire(clock())), opts.leaseCheckMs ?? 100);
  leaseTimer.unref();

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${addr.port}`,
    port: addr.port,
    events,
    nodes: () => ledger.nodeList(),
    stats(): ReceiverStats {
      const nodes = { alive: 0, expired: 0, final: 0 };
      for (const n of ledger.nodeList()) nodes[n.state]++;
      const { lastLeaseMs, ...rest } = stats;
      return {
        ...rest,
        nodes,
        workers: ledger.countByState(),
        events: { ...counts },
        ...(lastLeaseMs === undefined ? {} : { lastLeaseMs }),
      };
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        clearInterval(leaseTimer);
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 500).unref();
      });
      return closing;
    },
  };
}

/** Rules the schema cannot say: the key is the batch id, parts are in range, no instance twice. */
function checkPing(ping: Ping, key: string): string | undefined {
  if (key !== ping.batch.id) return `idempotency-key ${JSON.stringify(key)} differs from batch.id ${JSON.stringify(ping.batch.id)}`;
  if (ping.batch.part > ping.batch.parts) return `batch.part ${ping.batch.part} is beyond batch.parts ${ping.batch.parts}`;
  const seen = new Set<string>();
  for (const [i, w] of ping.workers.entries()) {
    const id = `${w.worker}\u0000${w.instance}`;
    if (seen.has(id)) return `workers.${i}: instance ${w.instance} of ${w.worker} is listed twice`;
    seen.add(id);
  }
  return undefined;
}

function send(res: ServerResponse, answer: Answer): void {
  const body = JSON.stringify(answer.body);
  res.writeHead(answer.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
