/**
 * Rate-limited logging of something that is down (NATS, the platform): a
 * warning at the first failure, then at most one every `everyMs` while it
 * stays down (saying how many failures were not logged), and one info line
 * when it comes back. An outage that goes unlogged looks like a healthy
 * daemon; one logged per failure floods the journal.
 */
import type { Logger } from 'pino';

/** How often a continuing outage is logged again. */
export const OUTAGE_LOG_EVERY_MS = 30_000;

export interface OutageLogOptions {
  log: Logger;
  /** Default {@link OUTAGE_LOG_EVERY_MS}. */
  everyMs?: number;
  /** Monotonic ms; default `performance.now()`. */
  now?: () => number;
}

export class OutageLog {
  private downSince: number | undefined;
  private lastWarnAt = -Infinity;
  private unlogged = 0;
  private readonly everyMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: OutageLogOptions) {
    this.everyMs = opts.everyMs ?? OUTAGE_LOG_EVERY_MS;
    this.now = opts.now ?? (() => performance.now());
  }

  get isDown(): boolean {
    return this.downSince !== undefined;
  }

  /** One more failure (or a reminder while down): warns now if the last warning is `everyMs` old. */
  down(fields: Record<string, unknown>, msg: string): void {
    const now = this.now();
    this.downSince ??= now;
    if (now - this.lastWarnAt < this.everyMs) {
      this.unlogged++;
      return;
    }
    const extra = this.unlogged > 0 ? { not_logged: this.unlogged } : {};
    this.opts.log.warn({ ...fields, down_ms: Math.round(now - this.downSince), ...extra }, msg);
    this.lastWarnAt = now;
    this.unlogged = 0;
  }

  /** It works again: one info line if it was down, nothing otherwise. */
  up(fields: Record<string, unknown>, msg: string): void {
    if (this.downSince === undefined) return;
    this.opts.log.info({ ...fields, down_ms: Math.round(this.now() - this.downSince) }, msg);
    this.downSince = undefined;
    this.lastWarnAt = -Infinity;
    this.unlogged = 0;
  }
}
