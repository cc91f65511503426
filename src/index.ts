/**
 * `import 'hbagg'`: run the daemon from code. Load and check a config (from
 * an object, a file and the environment, as `hbagg run` does), start a daemon
 * from it and stop it. The worker library is `hbagg/client`, the wire schemas
 * `hbagg/protocol`, the reference platform receiver `hbagg/receiver`.
 */
import type { Logger } from 'pino';
import { ConfigError, loadConfig, type ConfigIssue, type HbaggConfig, type LoadConfigOptions } from './config/index.js';
import { Daemon, type DaemonSnapshot, type DaemonState } from './daemon/daemon.js';
import { createLogger } from './daemon/logger.js';

export { ConfigError, loadConfig, redactConfig, REDACTED } from './config/index.js';
export type * from './config/types.js';
export type { ConfigIssue, HbaggConfigInput, LoadConfigOptions } from './config/index.js';
export { VERSION, type DaemonCounters, type DaemonSnapshot, type DaemonState } from './daemon/daemon.js';

export type ConfigCheck = { ok: true; config: HbaggConfig } | { ok: false; issues: readonly ConfigIssue[] };

/** `loadConfig` without the throw: the compiled config, or every bad key with its reason. */
export function checkConfig(options: LoadConfigOptions = {}): ConfigCheck {
  try {
    return { ok: true, config: loadConfig(options) };
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, issues: err.issues };
    throw err;
  }
}

export interface StartDaemonOptions {
  /** A pino logger; default: JSON lines on stdout at `config.logLevel`, secrets redacted. */
  logger?: Logger;
}

/** A running daemon. */
export interface DaemonHandle {
  /** This node's name in pings (`node_id`). */
  readonly node: string;
  /** Random per start: `daemon.instance` in pings. */
  readonly instance: string;
  readonly state: DaemonState;
  /** Where the HTTP interface listens (the chosen port when `http.listen` ends in `:0`). */
  readonly http: { host: string; port: number };
  /** A read-only picture of the daemon now: workers by state, counters, NATS, journal. */
  snapshot(): Promise<DaemonSnapshot>;
  /**
   * Resolves once the daemon is subscribed on NATS (it connects in the background and retries forever);
   * rejects if it refused to start because another daemon shares its beat subjects (then call `stop()`).
   */
  natsReady(): Promise<void>;
  /** Stops taking input, sends the final ping, releases the state dir; within `shutdown_timeout_ms`. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts a daemon (state dir locked and restored, HTTP listening, pinging,
 * NATS connecting). Signals are the caller's: call `stop()` on SIGTERM.
 * When the start fails, what was started is stopped again before the error is thrown.
 */
export async function startDaemon(config: HbaggConfig, options: StartDaemonOptions = {}): Promise<DaemonHandle> {
  const daemon = new Daemon(config, options.logger ?? createLogger(config.logLevel));
  try {
    await daemon.start();
  } catch (err) {
    await daemon.stop().catch(() => undefined);
    throw err;
  }
  const { info, http: address } = await daemon.snapshot();
  return {
    node: info.node,
    instance: info.instance,
    get state() {
      return daemon.state;
    },
    http: { host: address?.address ?? config.http.host, port: address?.port ?? config.http.port },
    snapshot: () => daemon.snapshot(),
    natsReady: () => daemon.natsReady(),
    stop: () => daemon.stop(),
  };
}
