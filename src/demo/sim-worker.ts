/**
 * A simulated worker for the demo, built the way a real one would be: a
 * `HeartbeatClient` with its own NATS connection, a `TaskTracker` for its
 * tasks, and a `GracefulShutdown` for stopping (driven by the demo's script
 * instead of a signal). A crash closes the connection without a word.
 */
import { GracefulShutdown, HeartbeatClient, TaskTracker } from '../client/index.js';
import type { SimPhase, SimWorkerView } from './view.js';

export interface SimWorkerOptions {
  id: string;
  servers: string;
  subjectPrefix: string;
  /** How often it beats. */
  intervalMs: number;
  /** How long draining waits for tasks in flight. */
  drainTimeoutMs: number;
  random?: () => number;
}

const MAX_TASKS = 4;

export class SimWorker {
  private _phase: SimPhase = 'starting';
  private client: HeartbeatClient | undefined;
  private tasks = new TaskTracker();
  private taskLoop: NodeJS.Timeout | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly random: () => number;
  private closed = false;
  /** Beats sent, over all instances. */
  beats = 0;
  /** Instances started. */
  instances = 0;

  constructor(private readonly opts: SimWorkerOptions) {
    this.random = opts.random ?? Math.random;
  }

  get phase(): SimPhase {
    return this._phase;
  }

  view(): SimWorkerView {
    const inflight = this.tasks.inflight;
    return {
      id: this.opts.id,
      instance: this.client?.instance ?? '-',
      phase: this._phase,
      status: inflight > 0 ? 'busy' : 'idle',
      inflight,
      beats: this.beats,
    };
  }

  /** Starts a new instance (a process start): new instance id, new connection. */
  async start(): Promise<void> {
    if (this.closed) return;
    this.tasks = new TaskTracker();
    const tasks = this.tasks;
    const client = new HeartbeatClient({
      worker: this.opts.id,
      servers: this.opts.servers,
      subjectPrefix: this.opts.subjectPrefix,
      intervalMs: this.opts.intervalMs,
      state: () => {
        this.beats++;
        const inflight = tasks.inflight;
        return { status: inflight > 0 ? 'busy' : 'idle', inflight, load: inflight / MAX_TASKS, meta: { demo: true } };
      },
    });
    this.client = client;
    this.instances++;
    this._phase = 'starting';
    await client.start();
    if (this.client !== client || this.closed) return;
    this._phase = 'running';
    // Now and then a task comes in and takes 1 to 4 s.
    this.taskLoop = setInterval(() => {
      if (!tasks.accepting || tasks.inflight >= MAX_TASKS || this.random() > 0.35) return;
      void tasks.run(() => this.sleep(1_000 + this.random() * 3_000)).catch(() => undefined);
    }, 700);
  }

  /** The graceful path: draining, tasks finish (or are abandoned at the deadline), stopped. */
  async shutdown(reason = 'SIGTERM'): Promise<void> {
    const client = this.client;
    if (!client || this._phase !== 'running') return;
    this._phase = 'draining';
    const shutdown = new GracefulShutdown({
      client,
      tasks: this.tasks,
      stopAccepting: () => clearInterval(this.taskLoop),
      drainTimeoutMs: this.opts.drainTimeoutMs,
      exit: () => undefined,
    });
    await shutdown.shutdown(reason);
    this.cancelTasks();
    if (this.client === client) this._phase = 'stopped';
  }

  /** The crash: no Leave, the connection just goes away. */
  async crash(): Promise<void> {
    const client = this.client;
    if (!client) return;
    this._phase = 'crashed';
    clearInterval(this.taskLoop);
    this.cancelTasks();
    await client.close();
  }

  /** Ends the simulation (no Leave: the daemon's final ping follows at once). Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.taskLoop);
    this.cancelTasks();
    if (this._phase !== 'crashed') this._phase = 'stopped';
    await this.client?.close();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  /** Drops the simulated tasks still running (their promises never settle; a crash loses them). */
  private cancelTasks(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
