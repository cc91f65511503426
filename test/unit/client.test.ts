import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import {
  GracefulShutdown,
  HeartbeatClient,
  TaskTracker,
  TaskTrackerClosedError,
  type BeatTransport,
  type ClientLogger,
  type HeartbeatClientOptions,
  type Scheduler,
  type SignalSource,
} from '../../src/client/index.js';
import { decodeBeat, decodeLeave } from '../../src/protocol/decode.js';
import type { Beat, Leave } from '../../src/protocol/schemas.js';

// ---- fakes ------------------------------------------------------------------

/** Lets every pending promise callback run (microtasks drain before a macrotask). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A hand-driven clock: timers fire only inside `advance()`, in time order. */
class FakeScheduler implements Scheduler {
  time = 1_700_000_000_000;
  /** When true, clearTimeout does nothing: a timer that fires although it was cancelled. */
  leakyClear = false;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now = (): number => this.time;

  setTimeout(fn: () => void, ms: number): number {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    if (!this.leakyClear) this.timers.delete(handle as number);
  }

  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing due timers in order and letting promises settle between them. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (let fired = 0; fired < 100_000; fired++) {
      await settle();
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      this.timers.delete(next[0]);
      this.time = next[1].at;
      next[1].fn();
    }
    this.time = end;
    await settle();
  }
}

type Answer = (leave: Leave) => Promise<{ data: Uint8Array }>;

const json = (value: unknown) => ({ data: new TextEncoder().encode(JSON.stringify(value)) });
const ack: Answer = (l) => Promise.resolve(json({ ok: true, worker: l.worker, instance: l.instance, state: l.phase }));
const never: Answer = () => new Promise(() => undefined);
const noResponders: Answer = () =>
  Promise.reject(Object.assign(new Error('503'), { name: 'RequestError', cause: Object.assign(new Error('no responders'), { name: 'NoResponders' }) }));

/** The few methods of a NATS connection the client uses, recording what it is given. */
class FakeTransport implements BeatTransport {
  readonly beats: Beat[] = [];
  readonly leaves: Leave[] = [];
  /** Shared with other fakes in a test to check the order of events. */
  events: string[] = [];
  failPublish = false;
  answers: Answer[] = [];
  defaultAnswer: Answer = ack;

  constructor(private readonly worker = 'w-1') {}

  publish(subject: string, payload: Uint8Array): void {
    if (this.failPublish) throw new Error('connection closed');
    expect(subject).toBe(`hb.beat.${this.worker}`);
    const decoded = decodeBeat(payload, this.worker);
    if (!decoded.ok) throw new Error(`the client sent an invalid beat: ${decoded.error}`);
    this.beats.push(decoded.value);
    this.events.push('beat');
  }

  request(subject: string, payload: Uint8Array, opts: { timeout: number }): Promise<{ data: Uint8Array }> {
    expect(subject).toBe(`hb.leave.${this.worker}`);
    expect(opts.timeout).toBeGreaterThan(0);
    const decoded = decodeLeave(payload, this.worker);
    if (!decoded.ok) throw new Error(`the client sent an invalid leave: ${decoded.error}`);
    this.leaves.push(decoded.value);
    this.events.push(`leave:${decoded.value.phase}`);
    return (this.answers.shift() ?? this.defaultAnswer)(decoded.value);
  }
}

/** A logger that keeps every line. */
function recordingLogger(): ClientLogger & { lines: { level: string; msg: string; obj: Record<string, unknown> }[] } {
  const lines: { level: string; msg: string; obj: Record<string, unknown> }[] = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) => void lines.push({ level, msg, obj });
  return { lines, warn: at('warn'), info: at('info'), debug: at('debug') };
}

function setup(extra: Partial<HeartbeatClientOptions> = {}) {
  const scheduler = new FakeScheduler();
  const transport = new FakeTransport(extra.worker ?? 'w-1');
  const log = recordingLogger();
  // Jitter is deterministic unless a test brings its own random source: 0.5 is the middle of the range.
  const client = new HeartbeatClient({ worker: 'w-1', nc: transport, scheduler, logger: log, instance: 'inst-1', random: () => 0.5, ...extra });
  return { scheduler, transport, log, client };
}

// ---- HeartbeatClient ------------------------------------------------------------

describe('HeartbeatClient', () => {
  it('beats at start and then every interval, each gap within interval ± jitter', async () => {
    const { scheduler, transport, client } = setup({ intervalMs: 1000, jitter: 0.1, random: Math.random });
    await client.start();
    expect(transport.beats).toHaveLength(1);
    await scheduler.advance(200_000);
    const ts = transport.beats.map((b) => b.ts ?? NaN);
    const gaps = ts.slice(1).map((t, i) => t - (ts[i] ?? NaN));
    expect(gaps.length).toBeGreaterThan(150);
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(900);
      expect(gap).toBeLessThanOrEqual(1100);
    }
    // Math.random jitter actually spreads the gaps.
    expect(new Set(gaps).size).toBeGreaterThan(10);
    await client.close();
  });

  it('reaches both ends of the jitter range with extreme random values', async () => {
    const values = [0, 0.9999999, 0.5];
    let i = 0;
    const { scheduler, transport, client } = setup({ intervalMs: 2000, jitter: 0.25, random: () => values[i++ % 3] ?? 0 });
    await client.start();
    await scheduler.advance(6000);
    const ts = transport.beats.map((b) => b.ts ?? NaN);
    expect(ts.slice(1).map((t, k) => t - (ts[k] ?? NaN))).toEqual([1500, 2500, 2000]);
  });

  it('sends valid beats whose seq starts at 0 and strictly increases', async () => {
    const { scheduler, transport, client } = setup({ intervalMs: 100 });
    await client.start();
    await scheduler.advance(5000);
    expect(transport.beats[0]).toMatchObject({ v: 1, worker: 'w-1', instance: 'inst-1', seq: 0, interval_ms: 100 });
    transport.beats.forEach((b, k) => expect(b.seq).toBe(k));
    expect(client.seq).toBe(transport.beats.length);
  });

  it('puts what the state callback returns into each beat', async () => {
    let inflight = 2;
    const { scheduler, transport, client } = setup({
      state: () => ({ status: 'busy', inflight, load: 0.5, meta: { queue: 'emails', shard: 3, canary: false } }),
    });
    await client.start();
    inflight = 0;
    await scheduler.advance(1100);
    expect(transport.beats[0]).toMatchObject({ status: 'busy', inflight: 2, load: 0.5, meta: { queue: 'emails', shard: 3, canary: false } });
    expect(transport.beats[1]?.inflight).toBe(0);
  });

  it('sends the beat without state fields when the state callback throws, and warns once per streak', async () => {
    let broken = true;
    const { scheduler, transport, log, client } = setup({
      state: () => {
        if (broken) throw new Error('db gone');
        return { status: 'idle' };
      },
    });
    await client.start();
    await scheduler.advance(3300);
    expect(transport.beats.length).toBeGreaterThanOrEqual(4);
    for (const b of transport.beats) expect(b.status).toBeUndefined();
    const warnings = log.lines.filter((l) => l.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.obj.err).toBe('db gone');
    broken = false;
    await scheduler.advance(1100);
    expect(transport.beats.at(-1)?.status).toBe('idle');
  });

  it('leaves out or clamps state fields the daemon would reject instead of sending a bad beat', async () => {
    const { transport, client } = setup({
      state: () => ({ status: 'weird' as 'idle', inflight: -1, load: 3, meta: { big: 'x'.repeat(3000) } }),
    });
    await client.start();
    expect(transport.beats[0]).toMatchObject({ load: 1 });
    expect(transport.beats[0]).not.toHaveProperty('status');
    expect(transport.beats[0]).not.toHaveProperty('inflight');
    expect(transport.beats[0]).not.toHaveProperty('meta');
  });

  it('never throws when publishing fails, and keeps beating once it works again', async () => {
    const { scheduler, transport, log, client } = setup();
    transport.failPublish = true;
    await expect(client.start()).resolves.toBeUndefined();
    await scheduler.advance(5500);
    expect(transport.beats).toHaveLength(0);
    expect(log.lines.filter((l) => l.level === 'warn' && l.msg.includes('publish failed'))).toHaveLength(1);
    transport.failPublish = false;
    await scheduler.advance(1100);
    expect(transport.beats).toHaveLength(1);
    // seq went on counting through the failures: still strictly increasing.
    expect(transport.beats[0]?.seq).toBeGreaterThanOrEqual(5);
    expect(log.lines.some((l) => l.msg === 'heartbeats are going out again')).toBe(true);
  });

  it('sends no beat after leave() is called, even one already due', async () => {
    const { scheduler, transport, client } = setup();
    await client.start();
    await scheduler.advance(800);
    transport.defaultAnswer = never; // the daemon never answers: the request stays in flight
    const beatsBefore = transport.beats.length;
    const leaving = client.leave('draining');
    expect(client.state).toBe('left');
    await scheduler.advance(60_000);
    expect(transport.beats).toHaveLength(beatsBefore);
    expect(transport.events.at(-1)).toBe('leave:draining');
    await leaving;
  });

  it('drops a beat whose timer fires after leave() although it was cancelled', async () => {
    const { scheduler, transport, client } = setup();
    scheduler.leakyClear = true;
    await client.start();
    void client.leave('draining');
    await scheduler.advance(10_000);
    expect(transport.beats).toHaveLength(1);
    expect(transport.events).toEqual(['beat', 'leave:draining']);
  });

  it('drops the beat in preparation when the state callback itself leaves', async () => {
    const { scheduler, transport, client } = setup({
      state: () => {
        if (client.seq >= 2) void client.leave('stopped', { reason: 'done' });
        return { status: 'idle' };
      },
    });
    await client.start();
    await scheduler.advance(10_000);
    expect(transport.beats.map((b) => b.seq)).toEqual([0, 1]);
    expect(transport.leaves).toHaveLength(1);
  });

  it('sends the leave with the next seq, the phase, reason and drain timeout', async () => {
    const { scheduler, transport, client } = setup();
    await client.start();
    await scheduler.advance(2100);
    const reply = await client.leave('draining', { reason: 'SIGTERM', drainTimeoutMs: 15_000 });
    expect(reply).toEqual({ ok: true, worker: 'w-1', instance: 'inst-1', state: 'draining' });
    const stopped = await client.leave('stopped', { reason: 'x'.repeat(300) });
    expect(stopped.ok).toBe(true);
    const [draining, final] = transport.leaves;
    expect(draining).toEqual({ v: 1, worker: 'w-1', instance: 'inst-1', seq: 3, phase: 'draining', reason: 'SIGTERM', drain_timeout_ms: 15_000 });
    expect(final?.seq).toBe(4);
    expect(final?.reason).toHaveLength(256);
    expect(final).not.toHaveProperty('drain_timeout_ms');
  });

  it('resolves with a readable failure, never throws, when no daemon answers within the timeout', async () => {
    const { scheduler, transport, log, client } = setup();
    transport.defaultAnswer = never;
    await client.start();
    const result = client.leave('draining', { timeoutMs: 2000 });
    await scheduler.advance(1999);
    let settled = false;
    void result.then(() => (settled = true));
    await settle();
    expect(settled).toBe(false);
    await scheduler.advance(1);
    await expect(result).resolves.toEqual({ ok: false, cause: 'timeout', error: 'no daemon answered within 2000 ms' });
    expect(log.lines.some((l) => l.level === 'warn' && l.msg.startsWith('leave not acknowledged'))).toBe(true);
  });

  it('maps a nats.js TimeoutError to the same timeout failure', async () => {
    const { transport, client } = setup();
    transport.answers.push(() => Promise.reject(Object.assign(new Error('timeout'), { name: 'TimeoutError' })));
    await expect(client.leave('stopped', { timeoutMs: 500 })).resolves.toMatchObject({ ok: false, cause: 'timeout' });
  });

  it('retries once when no daemon is listening yet, inside the same time budget', async () => {
    const { scheduler, transport, client } = setup();
    transport.answers.push(noResponders);
    const result = client.leave('draining');
    await scheduler.advance(300);
    await expect(result).resolves.toMatchObject({ ok: true, state: 'draining' });
    expect(transport.leaves).toHaveLength(2);
    expect(transport.leaves[1]?.seq).toBe(transport.leaves[0]?.seq);
  });

  it('gives up after the retry when still no daemon listens', async () => {
    const { scheduler, transport, client } = setup();
    transport.defaultAnswer = noResponders;
    const result = client.leave('stopped');
    await scheduler.advance(2000);
    await expect(result).resolves.toEqual({ ok: false, cause: 'no_responders', error: 'no daemon is listening on hb.leave.w-1' });
    expect(transport.leaves).toHaveLength(2);
  });

  it('reports a refused leave with the daemon reason, and a request that throws as a failure', async () => {
    const { transport, client } = setup();
    transport.answers.push(() => Promise.resolve(json({ ok: false, error: 'seq: too small' })));
    await expect(client.leave('draining')).resolves.toEqual({
      ok: false,
      cause: 'refused',
      error: 'the daemon refused the leave: seq: too small',
    });
    transport.answers.push(() => {
      throw new Error('connection closed');
    });
    await expect(client.leave('stopped')).resolves.toMatchObject({ ok: false, cause: 'error' });
    transport.answers.push(() => Promise.resolve({ data: new TextEncoder().encode('nope') }));
    await expect(client.leave('stopped')).resolves.toMatchObject({ ok: false, cause: 'bad_reply' });
  });

  it('stop() pauses the beats and start() resumes them with the same sequence', async () => {
    const { scheduler, transport, client } = setup();
    await client.start();
    client.stop();
    expect(client.state).toBe('paused');
    await scheduler.advance(10_000);
    expect(transport.beats).toHaveLength(1);
    await client.start();
    expect(transport.beats.map((b) => b.seq)).toEqual([0, 1]);
    expect(scheduler.pending).toBe(1);
  });

  it('logs each lifecycle transition and ignores start() after leaving', async () => {
    const { transport, log, client } = setup();
    await client.start();
    await client.leave('stopped');
    await client.start();
    await client.close();
    await client.close();
    const transitions = log.lines.filter((l) => l.msg.startsWith('heartbeat client ')).map((l) => `${String(l.obj.from)}>${String(l.obj.to)}`);
    expect(transitions).toEqual(['created>beating', 'beating>left', 'left>closed']);
    expect(transport.beats).toHaveLength(1);
  });

  it('rejects a bad worker id, interval or jitter when constructed', () => {
    const nc = new FakeTransport();
    expect(() => new HeartbeatClient({ worker: 'a.b', nc })).toThrow(/must match/);
    expect(() => new HeartbeatClient({ worker: 'w', nc, intervalMs: 50 })).toThrow(/100\.\.600000/);
    expect(() => new HeartbeatClient({ worker: 'w', nc, jitter: 1 })).toThrow(/jitter/);
    expect(() => new HeartbeatClient({ worker: 'w', nc, subjectPrefix: 'hb.*' })).toThrow(/subjectPrefix/);
    expect(new HeartbeatClient({ worker: 'w', nc }).instance).toMatch(/^[0-9a-f]{16}$/);
  });

  it('accepts a pino logger as its logger', () => {
    const logger: ClientLogger = pino({ level: 'silent' });
    expect(() => new HeartbeatClient({ worker: 'w', nc: new FakeTransport(), logger })).not.toThrow();
  });
});

// ---- TaskTracker --------------------------------------------------------------

describe('TaskTracker', () => {
  it('counts tasks in flight and resolves idle() when the last one settles', async () => {
    const tracker = new TaskTracker();
    await tracker.idle();
    let finish!: () => void;
    let fail!: (e: Error) => void;
    const a = tracker.run(() => new Promise<void>((r) => (finish = r)));
    const b = tracker.track(new Promise<void>((_, reject) => (fail = reject)));
    expect(tracker.inflight).toBe(2);
    let idle = false;
    void tracker.idle().then(() => (idle = true));
    finish();
    await a;
    expect(idle).toBe(false);
    fail(new Error('task failed'));
    await expect(b).rejects.toThrow('task failed');
    await settle();
    expect(idle).toBe(true);
    expect({ inflight: tracker.inflight, completed: tracker.completed, errored: tracker.errored }).toEqual({
      inflight: 0,
      completed: 2,
      errored: 1,
    });
  });

  it('turns new tasks away after close() without running them', async () => {
    const tracker = new TaskTracker();
    tracker.close();
    let ran = false;
    await expect(tracker.run(() => (ran = true))).rejects.toBeInstanceOf(TaskTrackerClosedError);
    expect(ran).toBe(false);
    expect(tracker.accepting).toBe(false);
  });

  it('counts a task whose function throws synchronously as errored', async () => {
    const tracker = new TaskTracker();
    await expect(
      tracker.run(() => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(tracker.errored).toBe(1);
  });
});

// ---- GracefulShutdown ---------------------------------------------------------

function shutdownSetup(opts: { drainTimeoutMs?: number; hardTimeoutMs?: number } = {}) {
  const { scheduler, transport, client } = setup();
  const events = transport.events;
  const tracker = new TaskTracker();
  const signals = new EventEmitter() as EventEmitter & SignalSource;
  const exits: number[] = [];
  const completions: unknown[] = [];
  const shutdown = new GracefulShutdown({
    client,
    tasks: tracker,
    stopAccepting: () => void events.push('stop accepting'),
    drainTimeoutMs: opts.drainTimeoutMs ?? 5000,
    hardTimeoutMs: opts.hardTimeoutMs ?? 8000,
    scheduler,
    signalSource: signals,
    exit: (code) => void exits.push(code),
    onComplete: (summary) => void completions.push(summary),
  }).install();
  /** A task that finishes after `ms` of fake time. */
  const task = (name: string, ms: number) =>
    tracker.run(() => new Promise<void>((r) => scheduler.setTimeout(() => (events.push(`${name} done`), r()), ms)));
  return { scheduler, transport, client, events, tracker, signals, exits, completions, shutdown, task };
}

describe('GracefulShutdown', () => {
  it('stops accepting, announces draining, waits for tasks, runs cleanups in reverse, announces stopped', async () => {
    const s = shutdownSetup();
    await s.client.start();
    void s.task('t1', 300);
    void s.task('t2', 1200);
    s.shutdown.addCleanup('db', () => void s.events.push('cleanup db'));
    s.shutdown.addCleanup('queue', async () => void s.events.push('cleanup queue'));
    s.events.splice(0);
    const done = s.shutdown.shutdown('SIGTERM');
    await s.scheduler.advance(2000);
    const summary = await done;
    expect(s.events).toEqual([
      'stop accepting',
      'leave:draining',
      't1 done',
      't2 done',
      'cleanup queue',
      'cleanup db',
      'leave:stopped',
    ]);
    expect(summary).toMatchObject({ reason: 'SIGTERM', tasksFinished: 2, tasksAbandoned: 0 });
    expect(summary.steps.map((st) => [st.name, st.ok])).toEqual([
      ['stop accepting', true],
      ['announce draining', true],
      ['wait for tasks', true],
      ['cleanup: queue', true],
      ['cleanup: db', true],
      ['announce stopped', true],
      ['close heartbeat client', true],
    ]);
    expect(summary.steps.find((st) => st.name === 'wait for tasks')?.ms).toBe(1200);
    expect(summary.totalMs).toBe(1200);
    expect(s.shutdown.state).toBe('stopped');
    expect(s.exits).toEqual([]); // a direct call does not exit
  });

  it('announces the time left before the hard deadline as drain_timeout_ms', async () => {
    const s = shutdownSetup({ drainTimeoutMs: 5000, hardTimeoutMs: 8000 });
    await s.shutdown.shutdown('deploy');
    expect(s.transport.leaves[0]).toMatchObject({ phase: 'draining', reason: 'deploy', drain_timeout_ms: 8000 });
  });

  it('returns the same promise when called twice and starts no task after it began', async () => {
    const s = shutdownSetup();
    const first = s.shutdown.shutdown('a');
    expect(s.shutdown.shutdown('b')).toBe(first);
    expect(s.shutdown.stopping).toBe(true);
    expect(s.shutdown.signal.aborted).toBe(true);
    expect(s.events).toContain('stop accepting'); // called before shutdown() returned
    await expect(s.tracker.run(() => 1)).rejects.toBeInstanceOf(TaskTrackerClosedError);
    await s.scheduler.advance(10);
    expect((await first).reason).toBe('a');
    expect(s.transport.leaves.map((l) => l.phase)).toEqual(['draining', 'stopped']);
  });

  it('abandons tasks still running at the drain deadline and reports them', async () => {
    const s = shutdownSetup({ drainTimeoutMs: 1000, hardTimeoutMs: 3000 });
    void s.task('quick', 100);
    void s.task('slow', 60_000);
    const done = s.shutdown.shutdown('SIGTERM');
    await s.scheduler.advance(1000);
    const summary = await done;
    expect(summary).toMatchObject({ tasksFinished: 1, tasksAbandoned: 1 });
    expect(summary.steps.find((st) => st.name === 'wait for tasks')).toMatchObject({
      ok: false,
      error: '1 task(s) still running after 1000 ms',
    });
    expect(s.events.at(-1)).toBe('leave:stopped');
  });

  it('runs every cleanup even when one throws or hangs past its timeout', async () => {
    const s = shutdownSetup();
    s.shutdown.addCleanup('a', () => void s.events.push('cleanup a'));
    s.shutdown.addCleanup('hangs', () => new Promise(() => undefined), { timeoutMs: 500 });
    s.shutdown.addCleanup('throws', () => {
      throw new Error('pool already closed');
    });
    const done = s.shutdown.shutdown();
    await s.scheduler.advance(600);
    const summary = await done;
    expect(summary.steps.filter((st) => st.name.startsWith('cleanup'))).toEqual([
      { name: 'cleanup: throws', ms: 0, ok: false, error: 'pool already closed' },
      { name: 'cleanup: hangs', ms: 500, ok: false, error: 'did not finish within 500 ms' },
      { name: 'cleanup: a', ms: 0, ok: true },
    ]);
    expect(s.events.slice(-2)).toEqual(['cleanup a', 'leave:stopped']);
  });

  it('goes on when no daemon answers the announcements, bounded by the leave timeout', async () => {
    const s = shutdownSetup();
    s.transport.defaultAnswer = never;
    const done = s.shutdown.shutdown();
    await s.scheduler.advance(4000);
    const summary = await done;
    expect(summary.steps.filter((st) => st.name.startsWith('announce'))).toEqual([
      { name: 'announce draining', ms: 2000, ok: false, error: 'no daemon answered within 2000 ms' },
      { name: 'announce stopped', ms: 2000, ok: false, error: 'no daemon answered within 2000 ms' },
    ]);
    expect(s.shutdown.state).toBe('stopped');
  });

  it('on the first signal shuts down, hands over the summary, then exits 0', async () => {
    const s = shutdownSetup();
    void s.task('t', 500);
    s.signals.emit('SIGTERM', 'SIGTERM');
    expect(s.shutdown.stopping).toBe(true);
    await s.scheduler.advance(400);
    expect(s.exits).toEqual([]);
    await s.scheduler.advance(200);
    expect(s.completions).toHaveLength(1);
    expect(s.completions[0]).toMatchObject({ reason: 'SIGTERM', tasksFinished: 1, tasksAbandoned: 0 });
    expect(s.exits).toEqual([0]);
  });

  it('exits 1 at once on a second signal', async () => {
    const s = shutdownSetup();
    void s.task('stuck', 1_000_000);
    s.signals.emit('SIGTERM', 'SIGTERM');
    await s.scheduler.advance(100);
    s.signals.emit('SIGINT', 'SIGINT');
    expect(s.exits).toEqual([1]);
    expect(s.shutdown.state).toBe('forced');
    await s.scheduler.advance(10_000);
    expect(s.exits).toEqual([1]); // the shutdown that goes on later never exits 0
    expect(s.completions).toEqual([]);
  });

  it('exits 1 when the hard deadline passes', async () => {
    const s = shutdownSetup({ drainTimeoutMs: 1000, hardTimeoutMs: 3000 });
    s.shutdown.addCleanup('hangs forever', () => new Promise(() => undefined));
    s.signals.emit('SIGTERM', 'SIGTERM');
    await s.scheduler.advance(2999);
    expect(s.exits).toEqual([]);
    await s.scheduler.advance(1);
    expect(s.exits).toEqual([1]);
  });

  it('polls a counting function when the worker tracks tasks itself', async () => {
    const { scheduler, client } = setup();
    let inflight = 3;
    const shutdown = new GracefulShutdown({ client, inflight: () => inflight, scheduler, exit: () => undefined });
    const done = shutdown.shutdown();
    await scheduler.advance(120);
    inflight = 1;
    await scheduler.advance(120);
    inflight = 0;
    await scheduler.advance(60);
    const summary = await done;
    expect(summary).toMatchObject({ tasksFinished: 3, tasksAbandoned: 0 });
    expect(summary.steps.find((st) => st.name === 'wait for tasks')?.ms).toBe(250);
  });

  it('still completes when the inflight callback throws', async () => {
    const { scheduler, client } = setup();
    const shutdown = new GracefulShutdown({
      client,
      inflight: () => {
        throw new Error('counter broken');
      },
      scheduler,
    });
    const done = shutdown.shutdown();
    await scheduler.advance(10);
    await expect(done).resolves.toMatchObject({ tasksFinished: 0, tasksAbandoned: 0 });
  });

  it('uninstall() removes its signal handlers', () => {
    const s = shutdownSetup();
    s.shutdown.uninstall();
    expect(s.signals.listenerCount('SIGTERM')).toBe(0);
    expect(s.signals.listenerCount('SIGINT')).toBe(0);
  });

  it('refuses a hard deadline that is not after the drain deadline', () => {
    const client = new HeartbeatClient({ worker: 'w', nc: new FakeTransport() });
    expect(() => new GracefulShutdown({ client, drainTimeoutMs: 5000, hardTimeoutMs: 5000 })).toThrow(/greater than/);
  });
});
