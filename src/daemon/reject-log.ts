/**
 * Rejections are logged as a summary at most once per window (counts by
 * reason and one sample of each), never one line per bad message: a flood of
 * garbage must not become a flood of logs.
 */
import type { Logger } from 'pino';
import type { RejectReason } from '../protocol/decode.js';

interface Sample {
  count: number;
  error: string;
  source: string;
}

export class RejectLog {
  private window = new Map<RejectReason, Sample>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: Logger,
    private readonly windowMs = 10_000,
  ) {}

  record(reason: RejectReason, error: string, source: string): void {
    const s = this.window.get(reason);
    if (s) s.count++;
    else this.window.set(reason, { count: 1, error: error.slice(0, 300), source: source.slice(0, 160) });
    this.timer ??= setTimeout(() => this.flush(), this.windowMs).unref();
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.window.size === 0) return;
    const rejected: Record<string, Sample> = Object.fromEntries(this.window);
    const total = [...this.window.values()].reduce((n, s) => n + s.count, 0);
    this.window = new Map();
    this.log.warn({ rejected, total }, `rejected ${total} message(s); one sample per reason`);
  }
}
