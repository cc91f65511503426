import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeartbeatClient, type BeatTransport, type ShutdownSummary } from '../../src/client/index.js';
import { loadConfig } from '../../src/config/index.js';
import { Daemon } from '../../src/daemon/daemon.js';
import type { Beat, Ping, PingWorker } from '../../src/protocol/schemas.js';
import {
  startNatsServer,
  startPlatformStub,
  waitFor,
  type NatsServerHandle,
  type PlatformStub,
  type RecordedPing,
} from '../../testing/index.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/worker-graceful.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const uniquePrefix = () => `hbt${randomBytes(4).toString('hex')}`;

interface WorkerEvent {
  type: string;
  t: number;
  id?: number;
  instance?: string;
  phase?: string;
  seq?: number;
  signal?: string;
  reply?: { ok: boolean; state?: string; error?: string };
  summary?: ShutdownSummary;
}

/** The fixture worker in a child process, its stdout parsed into events. */
interface WorkerProcess {
  child: ChildProcess;
  events: WorkerEvent[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startWorker(env: Record<string, string>): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: WorkerEvent[] = [];
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    for (let i = out.indexOf('\n'); i >= 0; i = out.indexOf('\n')) {
      const line = out.slice(0, i);
      out = out.slice(i + 1);
      if (line.trim()) events.push(JSON.parse(line) as WorkerEvent);
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err = (err + chunk).slice(-4000);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, events, stderr: () => err, exited };
}

/** Resolves with the exit, or kills the child and fails after `ms`. */
async function exitWithin(w: WorkerProcess, ms: number) {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      w.child.kill('SIGKILL');
      reject(new Error(`worker did not exit within ${ms} ms; stderr: ${w.stderr()}`));
    }, ms);
  });
  try {
    return await Promise.race([w.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

const entryOf = (r: RecordedPing, instance: string): PingWorker | undefined =>
  (r.body as Ping).workers.find((w) => w.instance === instance);

describe('graceful shutdown of a worker in a child process, with a real daemon', () => {
  let nats: NatsServerHandle;
  let stub: PlatformStub;
  let daemon: Daemon;
  let prefix: string;
  let stateDir: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    stub = await startPlatformStub();
    stateDir = mkdtempSync(path.join(tmpdir(), 'hbagg-graceful-'));
    prefix = uniquePrefix();
    const cfg = loadConfig({
      env: {
        HBAGG_NODE_ID: 'graceful-node',
        HBAGG_NATS_URL: nats.url,
        HBAGG_PLATFORM_URL: stub.url,
        HBAGG_HTTP_LISTEN: '127.0.0.1:0',
        HBAGG_STATE_DIR: stateDir,
        HBAGG_SUBJECT_PREFIX: prefix,
      },
    });
    daemon = new Daemon(cfg, pino({ level: 'silent' }));
    await daemon.start();
    await daemon.natsReady();
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await daemon?.stop();
    await stub?.close();
    await nats?.stop();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it('on SIGTERM finishes every task in flight, starts none, and the platform hears draining then stopped with no beat after', async () => {
    const worker = 'graceful-1';
    const w = startWorker({ NATS_URL: nats.url, SUBJECT_PREFIX: prefix, WORKER: worker, TASK_MS: '600', LANES: '3', INTERVAL_MS: '200' });
    children.push(w.child);
    const ready = await waitFor(() => w.events.find((e) => e.type === 'ready'), { timeoutMs: 20_000, message: 'worker ready' });
    const instance = ready.instance ?? '';
    // Steady state: the platform knows the worker, and a second round of tasks is under way.
    await waitFor(() => stub.requests.some((r) => entryOf(r, instance)?.state === 'active'), { timeoutMs: 10_000, message: 'worker active at the platform' });
    await waitFor(() => w.events.filter((e) => e.type === 'task-start').length >= 4, { timeoutMs: 10_000, message: 'tasks running' });

    const started = new Set<number>();
    const ended = new Set<number>();
    for (const e of w.events) {
      if (e.type === 'task-start') started.add(e.id ?? -1);
      if (e.type === 'task-end') ended.add(e.id ?? -1);
    }
    expect(started.size - ended.size).toBeGreaterThan(0);
    w.child.kill('SIGTERM');
    const exit = await exitWithin(w, 20_000);
    expect(exit, w.stderr()).toEqual({ code: 0, signal: null });

    // Every task started (before the signal) completed; none started after it.
    const types = w.events.map((e) => e.type);
    const signalAt = types.indexOf('signal');
    expect(signalAt).toBeGreaterThan(0);
    expect(types.slice(signalAt).filter((t) => t === 'task-start')).toEqual([]);
    const startedIds = w.events.filter((e) => e.type === 'task-start').map((e) => e.id);
    const endedIds = w.events.filter((e) => e.type === 'task-end').map((e) => e.id);
    expect(new Set(endedIds)).toEqual(new Set(startedIds));
    const inflightAtSignal = startedIds.length - w.events.slice(0, signalAt).filter((e) => e.type === 'task-end').length;

    // The shutdown's own order: stop accepting, draining, (tasks end), stopped, summary.
    const lifecycle = w.events.slice(signalAt).filter((e) => !e.type.startsWith('task-'));
    expect(lifecycle.map((e) => (e.phase ? `${e.type}:${e.phase}` : e.type))).toEqual([
      'signal',
      'stop-accepting',
      'leave-request:draining',
      'leave-reply:draining',
      'leave-request:stopped',
      'leave-reply:stopped',
      'summary',
    ]);
    const lastTaskEnd = w.events.findLastIndex((e) => e.type === 'task-end');
    expect(lastTaskEnd).toBeLessThan(w.events.findIndex((e) => e.type === 'leave-request' && e.phase === 'stopped'));

    const summary = w.events.find((e) => e.type === 'summary')?.summary;
    expect(summary).toMatchObject({ reason: 'SIGTERM', tasksFinished: inflightAtSignal, tasksAbandoned: 0 });
    expect(summary?.steps.every((s) => s.ok)).toBe(true);
    expect(w.events.filter((e) => e.type === 'leave-reply').map((e) => e.reply?.state)).toEqual(['draining', 'stopped']);

    // The platform: draining, then stopped, for this instance.
    await waitFor(() => stub.accepted().some((r) => entryOf(r, instance)?.state === 'stopped'), { message: 'stopped at the platform' });
    const pings = stub.requests.filter((r) => entryOf(r, instance) !== undefined);
    const states = pings.map((r) => entryOf(r, instance)?.state);
    const firstDraining = states.indexOf('draining');
    expect(firstDraining).toBeGreaterThan(0);
    expect(states.indexOf('stopped')).toBeGreaterThan(firstDraining);
    expect(states.slice(firstDraining).every((s) => s === 'draining' || s === 'stopped')).toBe(true);

    // No beat of this instance is forwarded after the leave: beats stay 0, seq moves only with the leaves.
    const leaveSeqs = w.events.filter((e) => e.type === 'leave-request').map((e) => e.seq);
    for (const r of pings.slice(firstDraining + 1)) {
      const entry = entryOf(r, instance);
      expect(entry?.beats).toBe(0);
      expect(leaveSeqs).toContain(entry?.seq);
    }
    expect(entryOf(pings[firstDraining] as RecordedPing, instance)?.seq).toBe(leaveSeqs[0]);
    // And the client sent none the daemon had to suppress.
    const rejected = (await daemon.snapshot()).beatsRejected;
    expect(rejected.suppressed).toBe(0);

    const leaveAt = w.events.find((e) => e.type === 'leave-request' && e.phase === 'draining')?.t ?? NaN;
    const drainingSeenAt = (pings[firstDraining] as RecordedPing).receivedAt;
    const stoppedLeaveAt = w.events.find((e) => e.type === 'leave-request' && e.phase === 'stopped')?.t ?? NaN;
    const stoppedSeenAt = pings.find((r) => entryOf(r, instance)?.state === 'stopped')?.receivedAt ?? NaN;
    console.info(
      `[graceful-shutdown] leave(draining) -> platform ${drainingSeenAt - leaveAt} ms; ` +
        `leave(stopped) -> platform ${stoppedSeenAt - stoppedLeaveAt} ms; ` +
        `tasks in flight at SIGTERM ${inflightAtSignal}, interrupted ${summary?.tasksAbandoned}; ` +
        `shutdown ${summary?.totalMs} ms (${summary?.steps.map((s) => `${s.name} ${s.ms}`).join(', ')})`,
    );
  });

  it('exits 1 at once on a second SIGTERM while tasks are still draining', async () => {
    const worker = 'graceful-2';
    const w = startWorker({ NATS_URL: nats.url, SUBJECT_PREFIX: prefix, WORKER: worker, TASK_MS: '60000', LANES: '1', INTERVAL_MS: '500' });
    children.push(w.child);
    await waitFor(() => w.events.some((e) => e.type === 'task-start'), { timeoutMs: 20_000, message: 'a task running' });
    w.child.kill('SIGTERM');
    await waitFor(() => w.events.some((e) => e.type === 'leave-reply'), { message: 'draining announced' });
    w.child.kill('SIGTERM');
    const exit = await exitWithin(w, 5000);
    expect(exit, w.stderr()).toEqual({ code: 1, signal: null });
    expect(w.events.some((e) => e.type === 'summary')).toBe(false);
    expect(w.events.filter((e) => e.type === 'signal')).toHaveLength(2);
  });
});

describe('HeartbeatClient against a real nats-server', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  });

  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('keeps beating with an increasing seq across a nats-server restart', async () => {
    const prefix = uniquePrefix();
    const beats: Beat[] = [];
    nc.subscribe(`${prefix}.beat.*`, { callback: (_e, m) => void beats.push(m.json<Beat>()) });
    await nc.flush();
    const client = new HeartbeatClient({
      worker: 'reconnecting',
      servers: nats.url,
      subjectPrefix: prefix,
      intervalMs: 100,
      connectOptions: { reconnectTimeWait: 100 },
    });
    await client.start();
    await waitFor(() => beats.length >= 3, { message: 'beats before the restart' });
    await nats.restart();
    const before = beats.length;
    await waitFor(() => beats.length >= before + 3, { timeoutMs: 15_000, message: 'beats after the restart' });
    const seqs = beats.map((b) => b.seq);
    expect(seqs.slice(1).every((s, i) => s > (seqs[i] ?? Infinity))).toBe(true);
    expect(client.state).toBe('beating');
    await client.close();
  });

  it('resolves leave() with a failure within its timeout when no daemon listens', async () => {
    const transport: BeatTransport = nc;
    const client = new HeartbeatClient({ worker: 'alone', nc: transport, subjectPrefix: uniquePrefix() });
    await client.start();
    const result = await client.leave('draining', { timeoutMs: 1500 });
    expect(result).toMatchObject({ ok: false, cause: 'no_responders' });
    expect(client.state).toBe('left');
    await client.close();
  });
});
