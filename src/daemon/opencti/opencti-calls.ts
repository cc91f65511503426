/**
 * One request to OpenCTI and what it teaches: sends a document, counts it,
 * reads the answer (answers.ts), feeds the request gate, remembers the last
 * result for /healthz, and learns the alias limit from "exceeded (max: N)".
 * The pinger decides what to send; this decides what an answer means.
 */
import type { Logger } from 'pino';
import type { Clock } from '../../core/time.js';
import type { Metrics } from '../metrics.js';
import type { LastPing } from '../pinger.js';
import { alias, type GraphqlRequest } from './documents.js';
import { readAnswer, type Verdict } from './answers.js';
import type { GraphqlResponse } from './graphql-client.js';
import type { RequestGate } from './request-gate.js';

export interface GraphqlPoster {
  post(request: GraphqlRequest, abort?: AbortSignal): Promise<GraphqlResponse>;
}

export type DocumentKind = 'mutation' | 'query';

export interface CallsDeps {
  client: GraphqlPoster;
  gate: RequestGate;
  clock: Clock;
  metrics: Metrics;
  log: Logger;
  /** The configured aliases per document (platform.opencti.aliases_per_request). */
  aliases: number;
  rand: () => number;
}

export class OpenCtiCalls {
  last: LastPing | undefined;
  lastAcceptedWall: number | undefined;
  /** Aliases per document, per operation type: OpenCTI limits mutations and queries apart. */
  private readonly limit: Record<DocumentKind, number>;
  /** Aborts requests in flight (shutdown cuts hanging ones short). */
  abort = new AbortController();

  constructor(private readonly d: CallsDeps) {
    this.limit = { mutation: d.aliases, query: d.aliases };
  }

  aliasesFor(kind: DocumentKind): number {
    return this.limit[kind];
  }

  /**
   * Sends `request` (with `count` aliases) and returns the verdict. A limit
   * learned from the answer applies to the next document; the caller resends.
   */
  async send(request: GraphqlRequest, kind: DocumentKind, count: number): Promise<Verdict> {
    const { metrics, clock, gate, log } = this.d;
    const res = await this.d.client.post(request, this.abort.signal);
    const now = clock();
    metrics.pingDuration.observe(res.durationMs / 1000);
    metrics.pingBytes.inc(Buffer.byteLength(JSON.stringify(request)));
    const aliases = Array.from({ length: count }, (_, i) => alias(i));
    const verdict: Verdict = res.status === undefined
      ? { kind: 'failed', message: res.error ?? 'no answer' }
      : readAnswer(res.status, res.text, aliases);
    const outcome = outcomeOf(verdict);
    metrics.pings.inc({ outcome });
    const last: LastPing = { atWall: now.wall, atMono: now.mono, outcome };
    if (res.status !== undefined) last.status = res.status;
    if (outcome !== 'accepted' && 'message' in verdict) last.error = verdict.message;
    this.last = last;
    if (outcome === 'accepted') this.lastAcceptedWall = now.wall;

    if (verdict.kind === 'answered') gate.finish(now.mono, { kind: 'answered' }, this.d.rand);
    else if (verdict.kind === 'throttled') {
      gate.finish(now.mono, res.retryAfterMs === undefined ? { kind: 'throttled' } : { kind: 'throttled', retryAfterMs: res.retryAfterMs }, this.d.rand);
    } else if (verdict.kind === 'failed') {
      gate.finish(now.mono, { kind: 'failed', unreachable: res.unreachable === true }, this.d.rand);
    } else if (verdict.kind === 'rejected') gate.finish(now.mono, { kind: 'failed' }, this.d.rand);
    else if (!this.lower(kind, verdict, count)) gate.finish(now.mono, { kind: 'failed' }, this.d.rand);

    if (verdict.kind !== 'answered' && verdict.kind !== 'alias_limit') {
      log.warn(
        { operation: request.operationName, status: res.status, error: last.error, aliases: count, failures: gate.consecutiveFailures() },
        'OpenCTI request not accepted; will retry',
      );
    }
    return verdict;
  }

  /** Sends fewer aliases from now on; false when it cannot (one alias was already too many). */
  private lower(kind: DocumentKind, verdict: Extract<Verdict, { kind: 'alias_limit' | 'too_large' }>, count: number): boolean {
    const before = this.limit[kind];
    // A limit at or above what we sent is not one we can honour by sending fewer: go to one.
    const next = verdict.kind === 'alias_limit'
      ? (verdict.max < count ? verdict.max : 1)
      : Math.max(1, Math.floor(count / 2));
    if (next >= count && next >= before) return false;
    if (next >= before) return true; // a concurrent answer lowered it already
    this.limit[kind] = next;
    this.d.log.warn(
      { operation: kind, aliases_per_request: next, was: before, error: verdict.message },
      verdict.kind === 'alias_limit'
        ? 'OpenCTI limits aliased calls per document; sending fewer from now on'
        : 'OpenCTI said the request is too large; sending fewer aliases from now on',
    );
    return true;
  }
}

function outcomeOf(v: Verdict): LastPing['outcome'] {
  switch (v.kind) {
    case 'answered': return 'accepted';
    case 'throttled': return 'throttled';
    case 'too_large': return 'too_large';
    case 'failed': return 'failed';
    default: return 'rejected';
  }
}
