/**
 * What the operator reads about the platform: failed pings, rate-limited and
 * naming the (redacted) URL; a redirect, once per Location, saying what to
 * change; and one line when pings are accepted again.
 */
import type { Logger } from 'pino';
import { OutageLog } from './outage-log.js';
import type { SendResult } from './platform-client.js';

export interface PlatformLogOptions {
  log: Logger;
  /** The platform URL as logs may show it (redacted). */
  url: string;
  everyMs?: number;
  now?: () => number;
}

export class PlatformLog {
  private readonly outage: OutageLog;
  private lastRedirect: string | undefined;

  constructor(private readonly opts: PlatformLogOptions) {
    this.outage = new OutageLog({ log: opts.log, everyMs: opts.everyMs, now: opts.now });
  }

  /** A ping part was not accepted. `ctx`: batch id, entries, failures so far. */
  failed(res: SendResult, ctx: Record<string, unknown>): void {
    const { log, url } = this.opts;
    const fields = { url, outcome: res.outcome, status: res.status, error: res.error, ...ctx };
    log.debug(fields, 'ping not accepted; will retry');
    if (res.redirect !== undefined && res.redirect !== this.lastRedirect) {
      this.lastRedirect = res.redirect;
      log.error({ url, status: res.status, location: res.redirect }, `platform redirected to ${res.redirect}; set platform.url to it`);
    }
    this.outage.down(fields, 'platform is not accepting pings; will retry with backoff');
  }

  /** A ping part was accepted. */
  accepted(): void {
    this.lastRedirect = undefined;
    this.outage.up({ url: this.opts.url }, 'platform is accepting pings again');
  }
}
