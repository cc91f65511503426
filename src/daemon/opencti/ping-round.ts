/**
 * One group of due connectors, pinged in one document: reads the state of
 * those we know nothing about first (so a ping never wipes it), sends the
 * aliased `pingConnector` calls, and settles each connector by the answer
 * for its alias. A lowered alias limit resends within the same round.
 */
import type { Logger } from 'pino';
import type { Clock } from '../../core/time.js';
import type { AliasVerdict } from './answers.js';
import type { ConnectorView } from './connector-map.js';
import type { ConnectorSchedule } from './connector-schedule.js';
import { alias, pingDocument, readDocument, type PingItem } from './documents.js';
import type { OpenCtiCalls } from './opencti-calls.js';
import type { OpenCtiMetrics } from './opencti-metrics.js';

export interface PingRoundDeps {
  calls: OpenCtiCalls;
  schedule: ConnectorSchedule;
  metrics: OpenCtiMetrics;
  log: Logger;
  clock: Clock;
  /** The connector as the registry shows it now. */
  view(id: string): ConnectorView | undefined;
}

export class PingRound {
  /** The state the platform holds for each connector, as last returned (null: none). */
  private readonly states = new Map<string, string | null>();
  private readonly loggedFailure = new Set<string>();

  constructor(private readonly d: PingRoundDeps) {}

  /** The connector has no live replica: what we knew of its state may change without us. */
  forget(id: string): void {
    this.states.delete(id);
    this.loggedFailure.delete(id);
  }

  knownState(id: string): string | null | undefined {
    return this.states.get(id);
  }

  async ping(ids: readonly string[]): Promise<void> {
    const { schedule, calls } = this.d;
    const need = ids.filter((id) => this.d.view(id)?.state === undefined && !this.states.has(id));
    const skip = need.length > 0 ? await this.read(need) : new Set<string>();
    let ready = ids.filter((id) => !skip.has(id));
    while (ready.length > 0) {
      const items: PingItem[] = [];
      for (const id of ready) {
        const v = this.d.view(id);
        if (!v?.live) {
          schedule.release(id);
          continue;
        }
        const item: PingItem = { id, state: v.state ?? this.states.get(id) ?? null };
        if (v.info !== undefined) item.info = v.info;
        items.push(item);
      }
      if (items.length === 0) return;
      const verdict = await calls.send(pingDocument(items), 'mutation', items.length);
      const now = this.d.clock().mono;
      if (verdict.kind === 'answered') {
        items.forEach((item, i) => this.settle(item.id, verdict.aliases.get(alias(i)), now));
        return;
      }
      const limit = calls.aliasesFor('mutation');
      if ((verdict.kind === 'alias_limit' || verdict.kind === 'too_large') && limit < items.length) {
        for (const item of items.slice(limit)) schedule.release(item.id);
        ready = items.slice(0, limit).map((item) => item.id);
        continue;
      }
      // No answer per connector: all stay due, the request gate says when to retry.
      this.d.metrics.connectorPings.inc({ outcome: verdict.kind === 'throttled' ? 'throttled' : 'failed' }, items.length);
      for (const item of items) schedule.release(item.id);
      return;
    }
  }

  private settle(id: string, v: AliasVerdict | undefined, now: number): void {
    if (v === undefined) {
      this.d.schedule.release(id);
      return;
    }
    this.d.metrics.connectorPings.inc({ outcome: v.kind });
    this.d.schedule.done(id, now, v.kind);
    if (v.kind === 'ok') {
      this.states.set(id, v.state);
      if (this.loggedFailure.delete(id)) this.d.log.info({ connector: id }, 'OpenCTI accepts pings for this connector again');
      return;
    }
    this.logOnce(id, v);
  }

  /** Reads the platform's state of `ids`; returns those not to ping now (unknown, refused, or no answer). */
  private async read(ids: readonly string[]): Promise<Set<string>> {
    const { calls, schedule, metrics } = this.d;
    const skip = new Set<string>();
    let i = 0;
    while (i < ids.length) {
      const chunk = ids.slice(i, i + calls.aliasesFor('query'));
      const verdict = await calls.send(readDocument(chunk), 'query', chunk.length);
      const now = this.d.clock().mono;
      if (verdict.kind === 'answered') {
        chunk.forEach((id, k) => {
          const v = verdict.aliases.get(alias(k));
          metrics.stateReads.inc({ outcome: v?.kind ?? 'failed' });
          if (v?.kind === 'ok') {
            this.states.set(id, v.state);
            return;
          }
          skip.add(id);
          if (v === undefined) schedule.release(id);
          else {
            schedule.done(id, now, v.kind);
            this.logOnce(id, v);
          }
        });
        i += chunk.length;
        continue;
      }
      if ((verdict.kind === 'alias_limit' || verdict.kind === 'too_large') && calls.aliasesFor('query') < chunk.length) continue;
      // Without the stored state a ping could wipe it: these wait for the next try.
      metrics.stateReads.inc({ outcome: 'failed' }, ids.length - i);
      for (const id of ids.slice(i)) {
        skip.add(id);
        schedule.release(id);
      }
      break;
    }
    return skip;
  }

  private logOnce(id: string, v: Exclude<AliasVerdict, { kind: 'ok' }>): void {
    if (this.loggedFailure.has(id)) return;
    this.loggedFailure.add(id);
    this.d.log.warn(
      { connector: id, error: v.message },
      v.kind === 'unknown'
        ? 'OpenCTI has no connector with this id; retrying with backoff (a restart of the connector retries at once)'
        : 'OpenCTI refused the ping for this connector; retrying with backoff',
    );
  }
}
