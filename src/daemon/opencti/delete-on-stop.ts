/**
 * platform.opencti.delete_on_stop: which connectors a clean stop owes a
 * `deleteConnector`, as pycti's helper does when it stops. Only connectors
 * the config lists (hbagg registers none itself), only when every replica
 * stopped cleanly (a `lost` one may be a crash: its connector stays), and
 * only once per stop; a refusal (the token lacks MODULES_MODMANAGE) is
 * logged and not retried.
 */
import type { Logger } from 'pino';
import type { Verdict } from './answers.js';
import type { ConnectorMap } from './connector-map.js';

export class DeleteOnStop {
  private readonly due = new Set<string>();
  private readonly sending = new Set<string>();
  /** Deleted (or given up on) while its stopped entries are still in the registry. */
  private readonly settled = new Set<string>();

  constructor(
    private readonly config: { deleteOnStop: boolean },
    private readonly log: Logger,
  ) {}

  update(view: ConnectorMap): void {
    if (!this.config.deleteOnStop) return;
    for (const id of [...this.due, ...this.settled]) {
      if (view.connectors.has(id)) continue;
      this.due.delete(id);
      this.settled.delete(id);
    }
    for (const v of view.connectors.values()) {
      if (v.live) {
        this.due.delete(v.id);
        this.settled.delete(v.id);
      } else if (v.stoppedCleanly && v.listed && !this.settled.has(v.id)) {
        this.due.add(v.id);
      }
    }
  }

  owed(): string[] {
    return [...this.due];
  }

  busy(id: string): boolean {
    return this.sending.has(id);
  }

  start(id: string): void {
    this.sending.add(id);
  }

  finish(id: string, verdict: Verdict): void {
    this.sending.delete(id);
    const result = verdict.kind === 'answered' ? verdict.aliases.get('c0') : undefined;
    if (result?.kind === 'ok' || result?.kind === 'unknown') {
      this.log.info({ connector: id }, 'OpenCTI connector deleted after a clean stop');
    } else if (result?.kind === 'rejected' || verdict.kind === 'rejected' || verdict.kind === 'alias_limit') {
      const error = result && 'message' in result ? result.message : 'message' in verdict ? verdict.message : undefined;
      this.log.warn({ connector: id, error }, 'OpenCTI refused deleteConnector (the token needs MODULES_MODMANAGE); not retried');
    } else {
      return; // no answer: still owed, the request gate decides when to retry
    }
    this.due.delete(id);
    this.settled.add(id);
  }
}
