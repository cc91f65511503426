#!/usr/bin/env node
/**
 * `hbagg run | check-config | demo | receive`. Signals are handled here and only here:
 * components expose `stop()`.
 */
import { parseArgs } from 'node:util';
import { checkForRun, ConfigError, loadConfig, redactConfig, type ConfigIssue } from './config/index.js';
import { Daemon, VERSION } from './daemon/daemon.js';
import { createLogger } from './daemon/logger.js';
import { flags, intFlag } from './commands/flags.js';
import { DEFAULT_FLEET_WAIT_MS, runFleet } from './fleet/index.js';
import { handleDaemonSignals } from './signals.js';

const USAGE = `hbagg ${VERSION}: batched heartbeat aggregator

usage:
  hbagg run [--config FILE]           run the daemon in the foreground (JSON logs on stdout)
  hbagg check-config [--config FILE] [--for run|file]
                                      print the effective config (secrets redacted) or every bad key;
                                      --for run (the default) also checks what run needs (platform.url,
                                      a writable state_dir), --for file only the values
  hbagg demo [--duration SECONDS] [--workers N] [--nats URL] [--log FILE]
                                      see it work: NATS, the daemon, simulated workers and a platform in one process
  hbagg receive [--port N] [--host HOST] [--next-interval-ms N] [--token TOKEN] [--json] [--no-delta]
                [--store nats://HOST:PORT[,...]] [--bucket NAME] [--replicas N]
                                      the reference platform receiver: validates pings, prints what it learns
                                      (the token can come from HBAGG_RECEIVER_TOKEN instead); with --store,
                                      one replica of many sharing a JetStream KV bucket
  hbagg fleet [--nats URL] [--json] [--wait MS] [--config FILE]
                                      list every hbagg on the bus (NATS service discovery), one row per node;
                                      exit 1 when any node is unhealthy or none answers
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
  // These two take flags of their own.
  // Loaded only when asked for: `hbagg run` never loads the demo or the receiver (JetStream, KV).
  if (command === 'demo') return (await import('./commands/demo.js')).demo(rest, USAGE);
  if (command === 'receive') return (await import('./commands/receive.js')).receive(rest, USAGE);
  if (command === 'fleet') return fleet(rest);
  let values: { config?: string; for?: string };
  try {
    const config = { type: 'string', short: 'c' } as const;
    // --for belongs to check-config only: `run --for` is an error, not an ignored flag.
    values = command === 'check-config'
      ? parseArgs({ args: rest, options: { config, for: { type: 'string' } }, strict: true }).values
      : parseArgs({ args: rest, options: { config }, strict: true }).values;
  } catch (err) {
    console.error(`hbagg ${command}: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  switch (command) {
    case 'check-config':
      if (values.for !== undefined && values.for !== 'run' && values.for !== 'file') {
        console.error(`hbagg check-config: --for expects run or file, got ${JSON.stringify(values.for)}`);
        return 2;
      }
      return checkConfig(values.config, values.for !== 'file');
    case 'run':
      return run(values.config);
    default:
      console.error(`hbagg: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

function printIssues(issues: readonly ConfigIssue[]): void {
  console.error(`hbagg: bad configuration:\n${issues.map((i) => `  ${i.key}: ${i.message}`).join('\n')}`);
}

function load(file: string | undefined, requirePlatformUrl: boolean, warnings: ConfigIssue[]) {
  try {
    return loadConfig({ file, env: process.env, requirePlatformUrl, onWarning: (w) => warnings.push(w) });
  } catch (err) {
    if (err instanceof ConfigError) {
      printIssues(err.issues);
      return undefined;
    }
    throw err;
  }
}

function checkConfig(file: string | undefined, forRun: boolean): number {
  const warnings: ConfigIssue[] = [];
  const cfg = load(file, forRun, warnings);
  for (const w of warnings) console.error(`hbagg: warning: ${w.key}: ${w.message}`);
  const mode = forRun
    ? 'checked for "hbagg run" (platform.url, a writable state_dir, readable NATS files); --for file checks the values alone'
    : 'checked the values alone; "hbagg run" also needs platform.url and a writable state_dir (--for run)';
  const runIssues = cfg && forRun ? checkForRun(cfg) : [];
  if (runIssues.length > 0) printIssues(runIssues);
  console.error(`hbagg check-config: ${mode}`);
  if (!cfg || runIssues.length > 0) return 2;
  console.log(JSON.stringify(redactConfig(cfg), null, 2));
  return 0;
}

async function run(file: string | undefined): Promise<number> {
  const warnings: ConfigIssue[] = [];
  const cfg = load(file, true, warnings);
  if (!cfg) return 2;
  const log = createLogger(cfg.logLevel);
  for (const w of warnings) log.warn({ variable: w.key }, `${w.key}: ${w.message}`);
  const daemon = new Daemon(cfg, log);
  const signals = handleDaemonSignals({
    log,
    stop: () => daemon.stop(),
    hardDeadlineMs: cfg.shutdownTimeoutMs + 2_000,
    readLogLevel: () => {
      try {
        return { level: loadConfig({ file, env: process.env, requirePlatformUrl: true }).logLevel };
      } catch (err) {
        return { error: err instanceof ConfigError ? err.issues.map((i) => `${i.key}: ${i.message}`).join('; ') : (err as Error).message };
      }
    },
  });
  try {
    await daemon.start();
  } catch (err) {
    log.fatal({ err }, (err as Error).message);
    await daemon.stop().catch(() => undefined);
    log.flush();
    return 1;
  }
  // natsReady() rejects only when another daemon shares the beat subjects.
  const refused = daemon.natsReady().then(() => signals.stopped, async (err: unknown) => {
    console.error(`hbagg: refusing to run: ${(err as Error).message}`);
    await daemon.stop().catch(() => undefined);
    return 1;
  });
  const code = await Promise.race([signals.stopped, refused]);
  log.flush();
  return code;
}

async function fleet(args: string[]): Promise<number> {
  const values = flags('fleet', args, USAGE, {
    nats: { type: 'string' }, json: { type: 'boolean' }, wait: { type: 'string' }, config: { type: 'string', short: 'c' },
  });
  if (!values) return 2;
  const wait = intFlag('wait', values.wait, 50, 60_000);
  if (typeof wait === 'string') {
    console.error(`hbagg fleet: ${wait}`);
    return 2;
  }
  // Auth and TLS come from the config and HBAGG_NATS_* as for the daemon; --nats picks the server.
  const warnings: ConfigIssue[] = [];
  const cfg = load(values.config, false, warnings);
  for (const w of warnings) console.error(`hbagg: warning: ${w.key}: ${w.message}`);
  if (!cfg) return 2;
  const nats = values.nats ? { ...cfg.nats, servers: values.nats.split(',') } : cfg.nats;
  const r = await runFleet({ nats, waitMs: wait ?? DEFAULT_FLEET_WAIT_MS, json: values.json === true });
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  return r.code;
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
