/**
 * What the daemon needs from whatever pings the platform: the batched ping
 * (`Pinger`, platform.kind "hbagg") or the OpenCTI adapter (`OpenCtiPinger`).
 */
import type { HbaggConfig } from '../config/types.js';
import type { DaemonInfo } from '../core/batch.js';
import type { Pacer } from '../core/pacer.js';
import type { Registry } from '../core/registry.js';
import type { Clock } from '../core/time.js';
import type { Logger } from 'pino';
import type { Metrics } from './metrics.js';
import { openCtiPinger } from './opencti/opencti-pinger.js';
import { Pinger, type LastPing } from './pinger.js';
import { PlatformClient } from './platform-client.js';

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

export interface PlatformPingerDeps {
  info: DaemonInfo;
  registry: Registry;
  pacer: Pacer;
  /** Plain monotonic time (pacing) and the registry's listening time. */
  clock: Clock;
  registryClock: Clock;
  metrics: Metrics;
  log: Logger;
  userAgent: string;
  /** The platform accepted what was sent: journal the acknowledgements. */
  onAccepted: () => void;
  /** Awaited before each batched ping (the journal: nothing reported that a crash could take back). */
  beforeSend: () => Promise<void>;
  outageLogEveryMs?: number;
}

/** The pinger `platform.kind` names: the batched ping (default) or the OpenCTI adapter. */
export function createPlatformPinger(c: HbaggConfig, d: PlatformPingerDeps): PlatformPinger {
  if (c.platform.kind === 'opencti') {
    return openCtiPinger({
      config: c, registry: d.registry, clock: d.clock, registryClock: d.registryClock,
      metrics: d.metrics, log: d.log, userAgent: d.userAgent, onAccepted: d.onAccepted,
    });
  }
  if (!c.platform.url) throw new Error('platform.url is required to run the daemon');
  return new Pinger({
    info: d.info, registry: d.registry, pacer: d.pacer, clock: d.clock, registryClock: d.registryClock,
    client: new PlatformClient({ url: c.platform.url, token: c.platform.token, timeoutMs: c.platform.timeoutMs, userAgent: d.userAgent }),
    metrics: d.metrics, log: d.log, maxBatchWorkers: c.platform.maxBatchWorkers,
    requestTimeoutMs: c.platform.timeoutMs,
    maxIntervalMs: c.flush.maxIntervalMs,
    // Delta pings (contract 1.1) unless platform.delta is off.
    fullEveryMs: c.platform.delta === 'off' ? undefined : c.flush.fullEveryMs,
    outageLogEveryMs: d.outageLogEveryMs,
    onAccepted: d.onAccepted,
    beforeSend: d.beforeSend,
  });
}
