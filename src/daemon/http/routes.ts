/**
 * The daemon's routes (docs/PROTOCOL.md section 4). Each handler only computes a
 * reply; the server writes it once. Probes never wait on anything but their
 * own checks: /livez on nothing outside the process, /readyz on the NATS
 * subscription, /healthz on the shared, cached round of checks.
 */
import type { IncomingMessage } from 'node:http';
import type { PingWorker } from '../../protocol/schemas.js';
import { isNotDurable, type Intake } from '../intake.js';
import type { Metrics } from '../metrics.js';
import { checkBearer, readJsonBody, type ParsedBody } from './body.js';
import type { LoopDelay } from './event-loop.js';
import { workersView } from './exposure.js';
import type { HealthReport } from './health.js';
import type { HttpServer, Reply } from './server.js';

/** Beats in one POST /v1/beat at most (a 64 KiB body holds about a thousand small ones). */
export const MAX_BEATS_PER_REQUEST = 1000;
/**
 * /livez fails only when the loop is late this much at the 99th percentile
 * of a window: stalling persistently, not one long pause. (A loop that is
 * blocked right now cannot answer at all; the probe's own timeout covers that.)
 */
export const LIVENESS_MAX_P99_MS = 5_000;

/** What the routes need from the daemon, and nothing more. */
export interface RoutesDeps {
  node: string;
  /** Bearer token for the POST routes and GET /v1/workers, body size limit, whether meta is listed. */
  http: { token?: string; maxBodyBytes: number; exposeMeta: boolean };
  /** The daemon's lifecycle state (`running` is one half of readiness). */
  state(): string;
  nats: { readonly ready: boolean; readonly state: string };
  health: { report(): Promise<HealthReport> };
  /** The event-loop monitor (owned, started and stopped by the daemon). */
  loop: { delay(): LoopDelay };
  /** GET /v1/workers: the registry's view. */
  workers(): PingWorker[];
  metrics: Pick<Metrics, 'registry' | 'httpRequests' | 'rejected'>;
  intake: Pick<Intake, 'beatValue' | 'leaveValue'>;
}

export function registerRoutes(http: HttpServer, d: RoutesDeps): void {
  const loop = d.loop;
  http.onResponse((route, status) => d.metrics.httpRequests.inc({ route, status: String(status) }));

  http.route('GET', '/livez', () => {
    const delay = loop.delay();
    const stalled = delay.p99Ms >= LIVENESS_MAX_P99_MS;
    return {
      status: stalled ? 503 : 200,
      body: {
        status: stalled ? 'stalled' : 'ok',
        event_loop: {
          p50_ms: delay.p50Ms, p99_ms: delay.p99Ms, max_ms: delay.maxMs,
          samples: delay.samples, window_ms: delay.windowMs,
        },
      },
    };
  });

  http.route('GET', '/readyz', () => {
    const nats = d.nats.ready;
    const state = d.state();
    const running = state === 'running';
    const ready = nats && running;
    return {
      status: ready ? 200 : 503,
      body: {
        status: ready ? 'ready' : 'not ready',
        checks: {
          nats: { status: nats ? 'ok' : 'fail', state: d.nats.state },
          daemon: { status: running ? 'ok' : 'fail', state },
        },
      },
    };
  });

  http.route('GET', '/healthz', async () => {
    const report = await d.health.report();
    return { status: report.status === 'ok' ? 200 : 503, body: report };
  });

  http.route('GET', '/v1/workers', (req) => {
    // It hands out instance ids (enough to forge a Leave): behind the token like the POST routes.
    const denied = checkBearer(req, d.http.token);
    if (denied) return denied;
    return { status: 200, body: { node: d.node, workers: workersView(d.workers(), d.http.exposeMeta) } };
  });

  http.route('GET', '/metrics', async () => ({
    status: 200,
    contentType: d.metrics.registry.contentType,
    body: await d.metrics.registry.metrics(),
  }));

  http.route('POST', '/v1/beat', async (req) => {
    const denied = checkBearer(req, d.http.token);
    if (denied) return denied;
    const body = await readJsonBody(req, d.http.maxBodyBytes);
    if (!body.ok) {
      if (body.why === 'invalid_json' || body.why === 'too_large') d.metrics.rejected(body.why);
      return body.reply;
    }
    return beats(body.value, source(req));
  });

  http.route('POST', '/v1/leave', async (req) => {
    const refused = checkBearer(req, d.http.token) ?? (await readBody(req));
    if ('status' in refused) return asLeaveReply(refused);
    const reply = await d.intake.leaveValue(refused.value, source(req));
    // Not durable is the daemon's failure (its disk), not the request's.
    return { status: reply.ok ? 200 : isNotDurable(reply) ? 503 : 400, body: reply };
  });

  async function readBody(req: IncomingMessage): Promise<Reply | Extract<ParsedBody, { ok: true }>> {
    const body = await readJsonBody(req, d.http.maxBodyBytes);
    return body.ok ? body : body.reply;
  }

  /** One Beat or an array of them, each through the intake (as from NATS); per-item results. */
  function beats(value: unknown, from: string): Reply {
    let items: unknown[];
    if (Array.isArray(value)) {
      if (value.length === 0) {
        return { status: 400, body: { error: 'body is an empty array; send one Beat object or an array of 1 to 1000 Beats' } };
      }
      if (value.length > MAX_BEATS_PER_REQUEST) {
        return {
          status: 413,
          body: { error: `body holds ${value.length} beats; at most ${MAX_BEATS_PER_REQUEST} per request, send the rest in another` },
        };
      }
      items = value;
    } else if (typeof value === 'object' && value !== null) {
      items = [value];
    } else {
      // Counted (invalid_schema) like any beat that is not an object.
      d.intake.beatValue(value, from);
      const got = value === null ? 'null' : typeof value;
      return { status: 400, body: { error: `body must be a Beat (a JSON object) or an array of Beats; got ${got}` } };
    }
    let accepted = 0;
    const rejected: { index: number; reason: string; error: string }[] = [];
    items.forEach((item, index) => {
      const r = d.intake.beatValue(item, from);
      if (r.ok) accepted++;
      else rejected.push({ index, reason: r.reason, error: r.error });
    });
    return { status: 202, body: { accepted, rejected } };
  }
}

/** A refused Leave still reads as a LeaveReply: `{"ok": false, "error": ...}`. */
function asLeaveReply(r: Reply): Reply {
  const error = (r.body as { error?: unknown } | undefined)?.error;
  return { ...r, body: { ok: false, error: typeof error === 'string' ? error : `refused with HTTP ${r.status}` } };
}

function source(req: IncomingMessage): string {
  return `http ${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
}
