/**
 * The bodies of the `hbagg` service's endpoints: `status` (what `hbagg fleet`
 * shows) and `workers` (what GET /v1/workers returns, under its rules: no
 * meta values unless `http.expose_meta`, and `http.token` required when set).
 * Each reads the daemon through a small deps interface.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MsgHdrs } from '@nats-io/transport-node';
import type { PingWorker, WorkerState } from '../../protocol/schemas.js';
import { workersView } from '../http/exposure.js';
import type { LastPing } from '../pinger.js';
import type { EndpointReply, EndpointRequest } from './micro.js';
import type { Twin } from './twin-guard.js';

export type PacerPhase = 'idle' | 'pinging' | 'backoff' | 'held';

export interface StatusDeps {
  info: { node: string; instance: string; version: string; startedAt: number };
  prefix: string;
  httpAddress(): string;
  registry: { countByState(): Record<WorkerState, number> };
  pacer: { currentIntervalMs(): number; consecutiveFailures(): number; heldUntil(): number; dueAt(): number };
  pinger: { readonly last: LastPing | undefined; readonly lastAcceptedWall: number | undefined };
  journal: { readonly state: string; readonly writeFailed: boolean };
  twin(): Twin | undefined;
  now(): { wall: number; mono: number };
}

/** The `status` endpoint's body (documented in README "Many nodes"). */
export interface StatusBody {
  node: string;
  instance: string;
  version: string;
  subject_prefix: string;
  http: string;
  started_at: string;
  uptime_ms: number;
  pacer: { state: PacerPhase; interval_ms: number; consecutive_failures: number };
  last_ping: { outcome: string; at: string; age_ms: number; status?: number; error?: string } | null;
  last_accepted_at: string | null;
  workers: Record<WorkerState, number>;
  journal: { ok: boolean; state: string; error?: string };
  twin: { node: string; instance: string; http?: string; seen_at: string } | null;
}

export function statusBody(d: StatusDeps): StatusBody {
  const now = d.now();
  const last = d.pinger.last;
  const journalOk = d.journal.state === 'open' && !d.journal.writeFailed;
  const twin = d.twin();
  return {
    node: d.info.node,
    instance: d.info.instance,
    version: d.info.version,
    subject_prefix: d.prefix,
    http: d.httpAddress(),
    started_at: new Date(d.info.startedAt).toISOString(),
    uptime_ms: Math.max(0, now.wall - d.info.startedAt),
    pacer: { state: pacerPhase(d.pacer, now.mono), interval_ms: d.pacer.currentIntervalMs(), consecutive_failures: d.pacer.consecutiveFailures() },
    last_ping: last
      ? {
          outcome: last.outcome,
          at: new Date(last.atWall).toISOString(),
          age_ms: Math.max(0, now.wall - last.atWall),
          ...(last.status !== undefined ? { status: last.status } : {}),
          ...(last.error !== undefined ? { error: last.error } : {}),
        }
      : null,
    last_accepted_at: d.pinger.lastAcceptedWall === undefined ? null : new Date(d.pinger.lastAcceptedWall).toISOString(),
    workers: d.registry.countByState(),
    journal: journalOk
      ? { ok: true, state: d.journal.state }
      : { ok: false, state: d.journal.state, error: d.journal.writeFailed ? 'the last journal write failed' : `journal is ${d.journal.state}` },
    twin: twin
      ? { node: twin.node, instance: twin.instance, ...(twin.http ? { http: twin.http } : {}), seen_at: new Date(twin.seenAt).toISOString() }
      : null,
  };
}

function pacerPhase(p: StatusDeps['pacer'], mono: number): PacerPhase {
  if (p.consecutiveFailures() > 0) return p.heldUntil() > mono ? 'held' : 'backoff';
  return p.dueAt() === Infinity ? 'pinging' : 'idle';
}

export interface WorkersDeps {
  node: string;
  registry: { snapshot(): PingWorker[] };
  /** `http.token`: when set, requests must carry it. */
  token: string | undefined;
  /** `http.expose_meta`: without it, no meta values leave the daemon. */
  exposeMeta: boolean;
}

/**
 * The token travels as a NATS header `Authorization: Bearer <token>` (as on
 * HTTP), or as `{"token": "<token>"}` in the request body.
 */
export function workersReply(d: WorkersDeps, req: EndpointRequest): EndpointReply {
  if (d.token !== undefined && d.token !== '') {
    const given = tokenOf(req.headers, req.data);
    if (given === undefined) {
      return { ok: false, code: 401, error: 'authorization required: send header "Authorization: Bearer <http.token>" or body {"token": "<http.token>"}' };
    }
    if (!sameSecret(given, d.token)) return { ok: false, code: 401, error: 'authorization refused: the token does not match http.token' };
  }
  return { ok: true, body: { node: d.node, workers: workersView(d.registry.snapshot(), d.exposeMeta) } };
}

function tokenOf(h: MsgHdrs | undefined, data: Uint8Array): string | undefined {
  const header = h?.get('Authorization');
  if (header) return /^Bearer[ ]+(\S+)\s*$/i.exec(header)?.[1] ?? '';
  if (data.length === 0) return undefined;
  try {
    const body = JSON.parse(new TextDecoder().decode(data)) as { token?: unknown } | null;
    return typeof body?.token === 'string' ? body.token : undefined;
  } catch {
    return undefined;
  }
}

/** Constant time whatever the lengths: both sides are hashed to 32 bytes first. */
function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(createHash('sha256').update(given).digest(), createHash('sha256').update(expected).digest());
}
