/**
 * Every signal `hbagg run` may get, handled here and only here (components
 * expose `stop()`). Node's defaults are wrong for a daemon: SIGHUP and SIGUSR2
 * would kill it with no log line and no final ping, SIGUSR1 would open the
 * inspector (a debugger port) on a production process.
 *
 * - SIGTERM, SIGINT: stop cleanly (the final ping); a second one exits at once;
 *   past `hardDeadlineMs` the process exits 1 whatever hangs.
 * - SIGHUP: re-reads `log_level` (the config file, then HBAGG_LOG_LEVEL) and
 *   applies it. Nothing else is reloaded; a config that no longer loads is
 *   logged and the level is kept.
 * - SIGUSR2: logged and ignored.
 * - SIGUSR1: logged and ignored (no inspector; to debug, start with `node --inspect`).
 */
import type { Logger } from 'pino';
import type { LogLevel } from './config/types.js';

export interface DaemonSignalOptions {
  log: Logger;
  /** Clean stop; resolves once stopped. */
  stop(): Promise<void>;
  /** After the first stop signal, exit 1 after this long whatever hangs. */
  hardDeadlineMs: number;
  /** The log level the config says now, or why the config cannot be read. */
  readLogLevel(): { level: LogLevel } | { error: string };
}

export interface DaemonSignals {
  /** Resolves with the exit code once a stop signal has stopped the daemon. */
  stopped: Promise<number>;
  /** Removes every handler. */
  uninstall(): void;
}

export function handleDaemonSignals(o: DaemonSignalOptions): DaemonSignals {
  const { log } = o;
  let stops = 0;
  let resolveStopped!: (code: number) => void;
  const stopped = new Promise<number>((resolve) => (resolveStopped = resolve));

  const onStop = (signal: NodeJS.Signals) => {
    stops++;
    if (stops > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      log.flush();
      process.exit(1);
    }
    log.info({ signal }, 'stopping');
    setTimeout(() => {
      log.error('shutdown passed its deadline; exiting');
      log.flush();
      process.exit(1);
    }, o.hardDeadlineMs).unref();
    o.stop().then(() => resolveStopped(0), () => resolveStopped(1));
  };
  const onHup = () => {
    const read = o.readLogLevel();
    if ('error' in read) {
      log.warn({ signal: 'SIGHUP', error: read.error }, 'SIGHUP: cannot re-read the config; log level unchanged');
      return;
    }
    const from = log.level;
    log.level = read.level;
    // At the new level, so the line shows even when the level went up to warn.
    log[read.level === 'silent' ? 'info' : read.level]({ signal: 'SIGHUP', from, to: read.level }, 'SIGHUP: log level re-read from the config');
  };
  const ignore = (signal: NodeJS.Signals, why: string) => () => log.info({ signal }, `${signal} ignored: ${why}`);

  const handlers: [NodeJS.Signals, (signal: NodeJS.Signals) => void][] = [
    ['SIGTERM', onStop],
    ['SIGINT', onStop],
    ['SIGHUP', onHup],
    ['SIGUSR2', ignore('SIGUSR2', 'hbagg gives it no meaning')],
    ['SIGUSR1', ignore('SIGUSR1', 'no inspector on a running daemon (start it with node --inspect to debug)')],
  ];
  for (const [signal, fn] of handlers) process.on(signal, fn);
  return {
    stopped,
    uninstall: () => {
      for (const [signal, fn] of handlers) process.off(signal, fn);
    },
  };
}
