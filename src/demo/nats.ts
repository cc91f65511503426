/**
 * Finds a NATS server for the demo: the one given, else one answering on
 * 127.0.0.1:4222, else a `nats-server` started on a free port (and stopped
 * with the demo), else a `NatsUnavailableError` that says how to get one.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { findNatsServerBinary, freePort, settleWithin } from '../util/index.js';

export interface NatsSource {
  url: string;
  /** given: --nats; found: something answered on the probe port; started: we launched nats-server. */
  kind: 'given' | 'found' | 'started';
  /** Stops the server if we started it; otherwise a no-op. Safe to call twice. */
  stop(): Promise<void>;
}

export interface FindNatsOptions {
  /** Use this server without probing. */
  url?: string;
  /** Where to look for a running server. Default 127.0.0.1:4222. */
  probeHost?: string;
  probePort?: number;
  /** Default 500. */
  probeTimeoutMs?: number;
  /** The nats-server binary; default: $NATS_SERVER_BIN, then PATH, /usr/sbin, /usr/local/sbin, /usr/local/bin. */
  binary?: string;
}

export class NatsUnavailableError extends Error {
  override readonly name = 'NatsUnavailableError';
}

export const HOW_TO_GET_NATS = `Get one, then run the demo again:
  sudo apt-get install nats-server                  # Debian, Ubuntu
  brew install nats-server                          # macOS
  docker run -d --name nats -p 4222:4222 nats -js   # anywhere with Docker
  (or a release binary from https://github.com/nats-io/nats-server/releases)
or point the demo at a server you have:  hbagg demo --nats nats://HOST:4222`;

const READY_DEADLINE_MS = 5_000;
/** How long a server given with --nats has to answer: a black-holed address must not hang the demo. */
const GIVEN_PROBE_MS = 5_000;

/** "cannot reach NATS at <url>: <why>" and what to do about it. */
export function cannotReachNats(url: string, why: string): NatsUnavailableError {
  return new NatsUnavailableError(
    `hbagg demo: cannot reach NATS at ${withoutUserinfo(url)}: ${why}.\n` +
      `Check that a nats-server runs there and that the URL is right (nats://HOST:PORT), ` +
      `or leave out --nats: the demo then uses one on 127.0.0.1:4222 or starts its own.`,
  );
}

/** Throws `cannotReachNats` unless a NATS server answers at `url` within `ms`. */
async function probeGiven(url: string, ms: number): Promise<void> {
  let target: URL;
  try {
    target = new URL(url.includes('://') ? url : `nats://${url}`);
  } catch {
    throw cannotReachNats(url, 'not a URL');
  }
  const host = target.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = target.port === '' ? 4222 : Number(target.port);
  if (!(await answersNats(host, port, ms))) throw cannotReachNats(url, `no NATS server answered on ${host}:${port} within ${ms} ms`);
}

/** A URL fit for a message: no user name or password in it. */
function withoutUserinfo(url: string): string {
  try {
    const u = new URL(url);
    if (u.username === '' && u.password === '') return url;
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url;
  }
}

export async function findOrStartNats(opts: FindNatsOptions = {}): Promise<NatsSource> {
  const noop = () => Promise.resolve();
  if (opts.url !== undefined) {
    await probeGiven(opts.url, opts.probeTimeoutMs ?? GIVEN_PROBE_MS);
    return { url: opts.url, kind: 'given', stop: noop };
  }
  const host = opts.probeHost ?? '127.0.0.1';
  const port = opts.probePort ?? 4222;
  if (await answersNats(host, port, opts.probeTimeoutMs ?? 500)) {
    return { url: `nats://${host}:${port}`, kind: 'found', stop: noop };
  }
  const bin = opts.binary ?? findNatsServerBinary();
  if (bin === undefined) {
    throw new NatsUnavailableError(
      `hbagg demo needs a NATS server and found none: nothing answers on ${host}:${port}, ` +
        `and there is no nats-server binary on PATH (nor in /usr/sbin).\n${HOW_TO_GET_NATS}`,
    );
  }
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await launch(bin, await freePort());
    } catch (err) {
      lastError = err as Error;
      // Only a port taken between freePort() and the bind is worth another try.
      if (!/address already in use/i.test(lastError.message)) break;
    }
  }
  throw new NatsUnavailableError(`could not start ${bin}: ${lastError?.message ?? 'unknown error'}\n${HOW_TO_GET_NATS}`);
}

async function launch(bin: string, port: number): Promise<NatsSource> {
  const child = spawn(bin, ['-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-4096);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let failure: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      failure = err;
      resolve();
    });
    child.once('exit', () => resolve());
  });
  const running = () => child.exitCode === null && child.signalCode === null && failure === undefined;
  // Whatever ends this process, the server goes with it.
  const onExit = () => child.kill('SIGKILL');
  process.once('exit', onExit);

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      process.off('exit', onExit);
      if (!running()) return;
      child.kill('SIGTERM');
      if (await settleWithin(exited, 2_000)) return;
      child.kill('SIGKILL');
      await exited;
    })();
    return stopping;
  };

  const deadline = Date.now() + READY_DEADLINE_MS;
  while (running() && Date.now() < deadline) {
    if (await answersNats('127.0.0.1', port, 250)) return { url: `nats://127.0.0.1:${port}`, kind: 'started', stop };
    await new Promise((r) => setTimeout(r, 25));
  }
  await stop();
  const why = failure?.message ?? (running() ? `not ready within ${READY_DEADLINE_MS} ms` : 'exited early');
  throw new Error(`${why}${output.trim() ? `\n--- nats-server output ---\n${output.trim()}` : ''}`);
}

/** Connects and waits for the server's `INFO` line: a port that merely accepts TCP is not NATS. */
export function answersNats(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let received = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('data', (chunk) => {
      received += chunk.toString('utf8');
      if (received.length >= 5) done(received.startsWith('INFO '));
    });
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
  });
}
