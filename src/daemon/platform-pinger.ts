/**
 * What the daemon needs from whatever pings the platform: the batched ping
 * (`Pinger`, platform.kind "hbagg") or the OpenCTI adapter (`OpenCtiPinger`).
 */
import type { LastPing } from './pinger.js';

export interface PlatformPinger {
  /** Starts sending (the batched ping sends the node's lease at once). */
  start(): void;
  /** A worker changed state: act on it soon. */
  urgent(): void;
  /** Stops sending; owes what a clean stop owes (final ping, deletes), bounded by `deadlineMono`. */
  stop(deadlineMono: number): Promise<void>;
  /** The last request's result, for /healthz and logs. */
  readonly last: LastPing | undefined;
  /** Wall time of the last request the platform accepted. */
  readonly lastAcceptedWall: number | undefined;
  /** Longest gap between accepted requests while all is well; undefined: the batched ping's rule. */
  readonly allowanceMs?: number;
  /** Why no request is owed now (nothing to ping), for /healthz; undefined when some is. */
  idle?(): string | undefined;
}
