/**
 * The checks behind /healthz (docs/PROTOCOL.md section 4): `nats` (connected,
 * subscribed, and a bounded flush round trip), `platform` (judged from the
 * last ping's age and outcome: no extra traffic to the platform), and
 * `state_dir` (a probe file written, fsynced and removed).
 */
import { randomBytes } from 'node:crypto';
import { open, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { PROMISE_SLACK_MS } from '../../core/pacer.js';
import { Health, type HealthCheck } from './health.js';
import type { LastPing } from '../pinger.js';

/** Default per-check timeout: a hung check delays /healthz by this, no more. */
export const CHECK_TIMEOUT_MS = 500;

export interface NatsProbe {
  readonly ready: boolean;
  readonly state: string;
  readonly connection: NatsConnection | undefined;
}

export function natsCheck(nats: NatsProbe, timeoutMs = CHECK_TIMEOUT_MS): HealthCheck {
  return {
    name: 'nats',
    timeoutMs,
    async run(signal) {
      const nc = nats.connection;
      if (!nc || nc.isClosed()) throw new Error(`not connected (state ${nats.state})`);
      if (!nats.ready) throw new Error(`not subscribed (state ${nats.state})`);
      const start = performance.now();
      // flush() takes no signal; the race ends our wait, and the timeout is reported by the caller.
      await Promise.race([nc.flush(), aborted(signal)]);
      return { server: nc.getServer(), rtt_ms: Math.round((performance.now() - start) * 100) / 100 };
    },
  };
}

export interface PlatformFacts {
  nowWall: number;
  /** When the daemon started (wall ms). */
  startedAtWall: number;
  last: LastPing | undefined;
  lastAcceptedWall: number | undefined;
  /**
   * The longest a daemon keeping its promises goes between accepted pings:
   * the largest `next_ping_within_ms` it can promise.
   */
  allowanceMs: number;
  /** Why no request is owed (say, no OpenCTI connector is live): healthy without recent pings. */
  idle?: string;
}

/** Pure: is the platform taking our pings, judging from what the pinger saw. */
export function judgePlatform(f: PlatformFacts): { ok: true; detail: Record<string, unknown> } | { ok: false; error: string } {
  const acceptedAgo = f.lastAcceptedWall === undefined ? undefined : f.nowWall - f.lastAcceptedWall;
  const since = acceptedAgo === undefined ? 'no ping accepted yet' : `last accepted ${acceptedAgo} ms ago`;
  if (f.idle !== undefined && (!f.last || f.last.outcome === 'accepted')) return { ok: true, detail: { idle: f.idle } };
  if (!f.last) {
    const up = f.nowWall - f.startedAtWall;
    if (up <= f.allowanceMs) return { ok: true, detail: { pending: 'first ping not answered yet', uptime_ms: up } };
    return { ok: false, error: `no ping answered in ${up} ms since start (allowed ${f.allowanceMs} ms)` };
  }
  if (f.last.outcome !== 'accepted') {
    // The client's error already starts with "HTTP <status>: " for an HTTP answer: do not say it twice.
    const status = f.last.status !== undefined ? `HTTP ${f.last.status}` : undefined;
    const how = status !== undefined && f.last.error?.startsWith(status)
      ? f.last.error
      : [status, f.last.error].filter(Boolean).join(': ');
    return {
      ok: false,
      error: `last ping ${f.last.outcome}${how ? ` (${how})` : ''} ${f.nowWall - f.last.atWall} ms ago; ${since}`,
    };
  }
  if (acceptedAgo !== undefined && acceptedAgo > f.allowanceMs) {
    return { ok: false, error: `${since}, but pings are promised within ${f.allowanceMs} ms` };
  }
  return { ok: true, detail: { last_accepted_ms_ago: acceptedAgo } };
}

export function platformCheck(facts: () => PlatformFacts, timeoutMs = CHECK_TIMEOUT_MS): HealthCheck {
  return {
    name: 'platform',
    timeoutMs,
    run() {
      const v = judgePlatform(facts());
      if (!v.ok) throw new Error(v.error);
      return v.detail;
    },
  };
}

/** What the state_dir check asks the journal (`Journal` implements it). */
export interface JournalProbe {
  /** Why the journal is not where a restart would look, or undefined. */
  detached(): Promise<string | undefined>;
  /** A compaction: writes the journal and its lock back to their path (not awaited here). */
  compact(): Promise<void>;
}

/**
 * Writes, fsyncs and removes a probe file in `dir`; stops at `signal`. Never
 * creates `dir`: a state dir deleted under the daemon fails this check until
 * the journal has written itself and its lock back (which a failing check starts).
 */
export function stateDirCheck(dir: string, timeoutMs = CHECK_TIMEOUT_MS, journal?: JournalProbe): HealthCheck {
  return {
    name: 'state_dir',
    timeoutMs,
    async run(signal) {
      const info = await stat(dir).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
        return undefined;
      });
      if (info === undefined) {
        journal?.compact().catch(() => undefined);
        throw new Error(`state dir ${dir} does not exist (deleted while running?); the journal writes it back at its next commit`);
      }
      if (!info.isDirectory()) throw new Error(`state dir ${dir} is not a directory`);
      const detached = await journal?.detached();
      if (detached !== undefined) {
        journal?.compact().catch(() => undefined);
        throw new Error(`state journal detached: ${detached}; writing it back`);
      }
      signal.throwIfAborted();
      const file = path.join(dir, `.health-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
      const fh = await open(file, 'wx');
      try {
        await fh.writeFile('hbagg health probe\n', { signal });
        signal.throwIfAborted();
        await fh.sync();
      } finally {
        await fh.close().catch(() => undefined);
        await unlink(file).catch(() => undefined);
      }
      return { dir };
    },
  };
}

function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason as Error);
    else signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });
}

export interface DaemonHealthDeps {
  info: { startedAt: number };
  config: {
    stateDir: string;
    healthCacheMs: number;
    flush: { maxIntervalMs: number };
    platform: { timeoutMs: number };
  };
  nats: NatsProbe;
  journal: JournalProbe;
  pinger: {
    readonly last: LastPing | undefined;
    readonly lastAcceptedWall: number | undefined;
    /** Set by pingers that pace otherwise than `flush` (the OpenCTI adapter). */
    readonly allowanceMs?: number;
    idle?(): string | undefined;
  };
}

/** The daemon's /healthz: the three checks of docs/PROTOCOL.md section 4 (and `more`), cached for `health_cache_ms`. */
export function daemonHealth(d: DaemonHealthDeps, more: readonly HealthCheck[] = []): Health {
  const { flush, platform } = d.config;
  // A ping starts within its promise and is answered within the request timeout.
  const allowanceMs = d.pinger.allowanceMs ?? Math.max(flush.maxIntervalMs, platform.timeoutMs) + PROMISE_SLACK_MS + platform.timeoutMs;
  return new Health(
    [
      natsCheck(d.nats),
      platformCheck(() => ({
        nowWall: Date.now(),
        startedAtWall: d.info.startedAt,
        last: d.pinger.last,
        lastAcceptedWall: d.pinger.lastAcceptedWall,
        allowanceMs,
        idle: d.pinger.idle?.(),
      })),
      stateDirCheck(d.config.stateDir, CHECK_TIMEOUT_MS, d.journal),
      ...more,
    ],
    { cacheMs: d.config.healthCacheMs },
  );
}
