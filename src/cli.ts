#!/usr/bin/env node
/**
 * `hbagg run | check-config`. Signals are handled here and only here:
 * components expose `stop()`.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, redactConfig } from './config/index.js';
import { Daemon, VERSION } from './daemon/daemon.js';
import { createLogger } from './daemon/logger.js';

const USAGE = `hbagg ${VERSION}: batched heartbeat aggregator

usage:
  hbagg run [--config FILE]           run the daemon in the foreground (JSON logs on stdout)
  hbagg check-config [--config FILE]  print the effective config (secrets redacted) or every bad key
  hbagg --version

Settings come from the config file, then HBAGG_* environment variables (which win).
Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--version' || command === '-v') {
    console.log(VERSION);
    return 0;
  }
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  let values: { config?: string };
  try {
    ({ values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } }, strict: true }));
  } catch (err) {
    console.error(`hbagg ${command}: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  switch (command) {
    case 'check-config':
      return checkConfig(values.config);
    case 'run':
      return run(values.config);
    default:
      console.error(`hbagg: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

function load(file: string | undefined, requirePlatformUrl: boolean) {
  try {
    return loadConfig({ file, env: process.env, requirePlatformUrl });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`hbagg: bad configuration:\n${err.issues.map((i) => `  ${i.key}: ${i.message}`).join('\n')}`);
      return undefined;
    }
    throw err;
  }
}

function checkConfig(file: string | undefined): number {
  const cfg = load(file, false);
  if (!cfg) return 2;
  console.log(JSON.stringify(redactConfig(cfg), null, 2));
  return 0;
}

async function run(file: string | undefined): Promise<number> {
  const cfg = load(file, true);
  if (!cfg) return 2;
  const log = createLogger(cfg.logLevel);
  const daemon = new Daemon(cfg, log);
  let signals = 0;
  const stopped = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        log.warn({ signal }, 'second signal: exiting now');
        log.flush();
        process.exit(1);
      }
      log.info({ signal }, 'stopping');
      // The hard deadline: whatever hangs, the process exits.
      setTimeout(() => {
        log.error('shutdown passed its deadline; exiting');
        log.flush();
        process.exit(1);
      }, cfg.shutdownTimeoutMs + 2_000).unref();
      daemon.stop().then(() => resolve(0), () => resolve(1));
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  try {
    await daemon.start();
  } catch (err) {
    log.fatal({ err }, (err as Error).message);
    await daemon.stop().catch(() => undefined);
    log.flush();
    return 1;
  }
  const code = await stopped;
  log.flush();
  return code;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Give async log writes a moment, then leave even if a handle lingers.
    setTimeout(() => process.exit(code), 50).unref();
  },
  (err: unknown) => {
    console.error(`hbagg: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
