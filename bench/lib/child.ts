/**
 * Bench children: TypeScript files run by node + tsx in their own process,
 * talking to the parent over IPC. Every wait has a deadline; every child is
 * killed when the parent exits, and exits itself when the parent goes away.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const ROOT = path.dirname(BENCH_DIR);

interface Envelope {
  type: string;
  id?: number;
  error?: string;
  [key: string]: unknown;
}

const live = new Set<ChildProcess>();
let hooked = false;

export interface BenchChild {
  readonly pid: number | undefined;
  /** Sends a command; resolves with the child's answer (throws its error). */
  call<T = Record<string, unknown>>(cmd: string, arg?: unknown, timeoutMs?: number): Promise<T>;
  /** The next event of `type` the child emits (events are queued until taken). */
  next<T = Record<string, unknown>>(type: string, timeoutMs: number): Promise<T>;
  /** Resolves with the exit code once the child is gone. */
  readonly exited: Promise<number | null>;
  /** SIGKILL, then wait for the exit. */
  kill(): Promise<void>;
}

/** Starts `bench/<file>` with `arg` (JSON in argv[2]) under extra node flags. */
export function startChild(file: string, arg: unknown, nodeFlags: string[] = []): BenchChild {
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  const proc = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', path.join(BENCH_DIR, file), JSON.stringify(arg)], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  live.add(proc);
  const queues = new Map<string, Envelope[]>();
  const waiters = new Map<string, ((m: Envelope) => void)[]>();
  const replies = new Map<number, { resolve(m: Envelope): void; reject(e: Error): void }>();
  let nextId = 1;
  let exitError: Error | undefined;

  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code, signal) => {
      live.delete(proc);
      exitError = new Error(`bench child ${file} exited (${signal ?? `code ${code}`})`);
      for (const r of replies.values()) r.reject(exitError);
      replies.clear();
      resolve(code);
    });
  });

  proc.on('message', (raw) => {
    const m = raw as Envelope;
    if (m.type === 'reply' && m.id !== undefined) {
      const r = replies.get(m.id);
      replies.delete(m.id);
      if (m.error !== undefined) r?.reject(new Error(`${file}: ${m.error}`));
      else r?.resolve(m);
      return;
    }
    const w = waiters.get(m.type)?.shift();
    if (w) w(m);
    else queues.set(m.type, [...(queues.get(m.type) ?? []), m]);
  });

  const deadline = <T>(p: Promise<T>, ms: number, what: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const t = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${file}: no ${what} within ${ms} ms`)), ms);
    });
    return Promise.race([p, t]).finally(() => clearTimeout(timer));
  };

  return {
    pid: proc.pid,
    exited,
    call<T>(cmd: string, arg?: unknown, timeoutMs = 30_000): Promise<T> {
      if (exitError) return Promise.reject(exitError);
      const id = nextId++;
      const p = new Promise<Envelope>((resolve, reject) => replies.set(id, { resolve, reject }));
      proc.send({ type: 'cmd', cmd, id, arg });
      return deadline(p, timeoutMs, `answer to ${cmd}`).finally(() => replies.delete(id)) as Promise<T>;
    },
    next<T>(type: string, timeoutMs: number): Promise<T> {
      const queued = queues.get(type)?.shift();
      if (queued) return Promise.resolve(queued as T);
      if (exitError) return Promise.reject(exitError);
      let mine: ((m: Envelope) => void) | undefined;
      const p = new Promise<Envelope>((resolve, reject) => {
        mine = resolve;
        waiters.set(type, [...(waiters.get(type) ?? []), resolve]);
        void exited.then(() => reject(exitError));
      });
      return deadline(p, timeoutMs, `"${type}" event`).finally(() => {
        const list = waiters.get(type);
        if (list && mine) waiters.set(type, list.filter((w) => w !== mine));
      }) as Promise<T>;
    },
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

// ---- child side -----------------------------------------------------------

/** The JSON argument the parent passed. */
export function childArg<T>(): T {
  return JSON.parse(process.argv[2] ?? '{}') as T;
}

/** Tells the parent; run by hand (no IPC channel), prints the event instead. */
export function emit(type: string, payload: Record<string, unknown> = {}): void {
  if (process.send) process.send({ ...payload, type });
  else process.stdout.write(`${JSON.stringify({ ...payload, type })}\n`);
}

export type Handler = (arg: unknown) => unknown;

/** Answers the parent's commands; exits when the parent goes away. */
export function serve(handlers: Record<string, Handler>): void {
  process.on('disconnect', () => process.exit(0));
  process.on('message', (raw) => {
    const m = raw as { type: string; cmd: string; id: number; arg: unknown };
    if (m.type !== 'cmd') return;
    const h = handlers[m.cmd];
    Promise.resolve()
      .then(() => {
        if (!h) throw new Error(`unknown command ${m.cmd}`);
        return h(m.arg);
      })
      .then(
        (value) => process.send?.({ ...(value as object | undefined), type: 'reply', id: m.id }),
        (err: unknown) => process.send?.({ type: 'reply', id: m.id, error: err instanceof Error ? err.message : String(err) }),
      );
  });
}

/** RSS, heap and CPU of this process, in bytes and microseconds. */
export function usage(): { rss: number; heapUsed: number; cpuUser: number; cpuSystem: number } {
  const m = process.memoryUsage();
  const c = process.cpuUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, cpuUser: c.user, cpuSystem: c.system };
}

/** Runs a full GC when node was started with --expose-gc (twice: weak references and finalizers). */
export function fullGc(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
}
