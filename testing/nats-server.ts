import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../src/util/free-port.js';
import { findNatsServerBinary } from '../src/util/nats-server-binary.js';
import { sleep } from './wait-for.js';

export interface NatsServerOptions {
  /** Start with JetStream enabled, storing in a fresh temporary directory. */
  jetstream?: boolean;
  /** Listen on this port instead of a free one. */
  port?: number;
  /** More command-line arguments, e.g. `['--user', 'u', '--pass', 'p']`, `['--auth', 'TOKEN']` or TLS files. */
  args?: string[];
}

export interface NatsServerHandle {
  /** `nats://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** SIGTERM (graceful), then wait for the process to exit. No-op when not running. */
  stop(): Promise<void>;
  /** SIGKILL (a crash), then wait for the process to exit. No-op when not running. */
  kill(): Promise<void>;
  /** Start again on the same port (and JetStream store), wait until ready. Stops a running server first. */
  restart(): Promise<void>;
}

const READY_DEADLINE_MS = 10_000;
const STOP_GRACE_MS = 5_000;
const LOG_TAIL_CHARS = 8_192;

/**
 * Launches the real `nats-server` on 127.0.0.1, like nats.js `nst` launcher.
 * Ready means a NATS INFO carrying this server's unique name came back over TCP,
 * so a stranger that grabbed the port cannot pass for it.
 */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const storeDir = opts.jetstream ? mkdtempSync(path.join(tmpdir(), 'hbagg-nats-')) : undefined;
  if (storeDir) registerTempDir(storeDir);

  let port = opts.port ?? (await freePort());
  let proc: RunningServer;
  for (let attempt = 1; ; attempt++) {
    try {
      proc = await launch(port, storeDir, opts.args);
      break;
    } catch (err) {
      // A free port can be taken between freePort() and the bind: try another.
      const portRace = opts.port === undefined && err instanceof PortInUseError && attempt < 5;
      if (!portRace) throw err;
      port = await freePort();
    }
  }

  let current: RunningServer | undefined = proc;
  const halt = async (signal: 'SIGTERM' | 'SIGKILL') => {
    const target = current;
    current = undefined;
    if (target) await target.halt(signal);
  };
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    stop: () => halt('SIGTERM'),
    kill: () => halt('SIGKILL'),
    async restart() {
      await halt('SIGTERM');
      current = await launch(port, storeDir, opts.args);
    },
  };
}

class PortInUseError extends Error {}

interface RunningServer {
  halt(signal: 'SIGTERM' | 'SIGKILL'): Promise<void>;
}

async function launch(port: number, storeDir: string | undefined, extra: readonly string[] = []): Promise<RunningServer> {
  const name = `hbagg-test-${randomUUID()}`;
  const args = ['-a', '127.0.0.1', '-p', String(port), '-n', name];
  if (storeDir) args.push('-js', '-sd', storeDir);
  args.push(...extra);

  const bin = natsServerBinary();
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const append = (chunk: Buffer) => {
    log = (log + chunk.toString('utf8')).slice(-LOG_TAIL_CHARS);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  // A server a test forgot to stop must not keep the test process alive; the exit hook kills it.
  child.unref();
  (child.stdout as net.Socket | null)?.unref();
  (child.stderr as net.Socket | null)?.unref();

  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      spawnError = err;
      resolve();
    });
    child.once('exit', () => resolve());
  });
  track(child, exited);

  const isRunning = () => child.exitCode === null && child.signalCode === null && !spawnError;
  const halt = async (signal: 'SIGTERM' | 'SIGKILL') => {
    if (!isRunning()) return exited;
    child.kill(signal);
    if (signal === 'SIGTERM') {
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited.finally(() => clearTimeout(timer));
    }
    return exited;
  };

  const deadline = Date.now() + READY_DEADLINE_MS;
  while (isRunning() && Date.now() < deadline) {
    if (await answersAsServer(port, name, exited)) return { halt };
    await sleep(25);
  }

  const what = `nats-server (${bin} ${args.join(' ')})`;
  if (spawnError) {
    const code = (spawnError as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? ' (not found: install nats-server or set NATS_SERVER_BIN)' : '';
    throw new Error(`could not start ${what}: ${spawnError.message}${hint}`);
  }
  let reason: string;
  if (isRunning()) {
    await halt('SIGKILL');
    reason = `did not accept connections on 127.0.0.1:${port} within ${READY_DEADLINE_MS} ms`;
  } else {
    await exited;
    reason = `exited (${child.signalCode ?? `code ${child.exitCode}`}) before accepting connections`;
  }
  // Give the last lines of output a chance to arrive before quoting them.
  await sleep(10);
  const message = `${what} ${reason}\n--- nats-server output ---\n${log.trim() || '(none)'}`;
  throw /address already in use/i.test(log) ? new PortInUseError(message) : new Error(message);
}

/** Connects, reads the INFO line, and checks that it names this server. */
function answersAsServer(port: number, name: string, exited: Promise<void>): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let received = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 1000);
    socket.on('data', (chunk) => {
      received += chunk.toString('utf8');
      if (received.includes('\r\n')) done(received.startsWith('INFO ') && received.includes(`"${name}"`));
    });
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
    // Something else may hold the port and say nothing: stop waiting once our server is gone.
    void exited.then(() => done(false));
  });
}

function natsServerBinary(): string {
  return findNatsServerBinary() ?? 'nats-server';
}

// ---- never leave a server behind ----------------------------------------

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let exitHookInstalled = false;
let watchdog: ChildProcess | undefined;

/**
 * The 'exit' hook covers a normal end of the test process. A watchdog child
 * covers the rest (the worker is SIGKILLed on a timeout): its stdin is a pipe
 * from us, so it sees EOF however we die, and then kills what we left.
 */
const WATCHDOG_SOURCE = `
const pids = new Set(), dirs = new Set();
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    const arg = line.slice(1);
    if (line[0] === '+') pids.add(Number(arg));
    else if (line[0] === '-') pids.delete(Number(arg));
    else if (line[0] === 'd') dirs.add(arg);
  }
});
process.stdin.on('close', () => {
  for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch {} }
  for (const dir of dirs) { try { require('fs').rmSync(dir, { recursive: true, force: true }); } catch {} }
  process.exit(0);
});
`;

function tellWatchdog(line: string): void {
  if (!watchdog) {
    watchdog = spawn(process.execPath, ['-e', WATCHDOG_SOURCE], { stdio: ['pipe', 'ignore', 'ignore'] });
    watchdog.on('error', () => undefined);
    watchdog.stdin?.on('error', () => undefined);
    // Neither the watchdog nor its pipe may keep the test process alive.
    watchdog.unref();
    (watchdog.stdin as unknown as net.Socket | null)?.unref();
  }
  watchdog.stdin?.write(`${line}\n`);
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });
}

function track(child: ChildProcess, exited: Promise<void>): void {
  installExitHook();
  if (child.pid === undefined) return;
  const pid = child.pid;
  live.add(child);
  tellWatchdog(`+${pid}`);
  void exited.then(() => {
    live.delete(child);
    tellWatchdog(`-${pid}`);
  });
}

function registerTempDir(dir: string): void {
  installExitHook();
  tempDirs.add(dir);
  tellWatchdog(`d${dir}`);
}
