/**
 * A small worker that pulls fake jobs from a queue and runs up to
 * CONCURRENCY of them at once, with heartbeats through hbagg and a graceful
 * shutdown: on SIGTERM or Ctrl-C it stops pulling, tells the platform it is
 * draining, finishes the jobs in hand, closes its queue, says it stopped, exits.
 *
 *   node --import tsx examples/worker.ts    (npx tsx works at a terminal, but does not pass a kill's SIGTERM on)
 *
 * Env: HBAGG_NATS_URL (default nats://127.0.0.1:4222), HBAGG_SUBJECT_PREFIX
 * (default hb), WORKER_ID (default example-worker), CONCURRENCY (default 4).
 * In an application, import from 'hbagg/client' instead of '../src/client/index.js'.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { HeartbeatClient, TaskTracker, TaskTrackerClosedError, installGracefulShutdown } from '../src/client/index.js';

interface Job {
  id: number;
  kind: 'resize' | 'transcode' | 'thumbnail';
  workMs: number;
}

/** Stands in for a real queue client (SQS, Redis, a database table...). */
class FakeQueue {
  private nextId = 1;
  private returned: Job[] = [];
  closed = false;

  /** Waits for the next job; undefined when `signal` aborts first. */
  async next(signal: AbortSignal): Promise<Job | undefined> {
    const again = this.returned.shift();
    if (again) return again;
    try {
      await sleep(50 + Math.random() * 250, undefined, { signal });
    } catch {
      return undefined; // aborted: shutting down
    }
    const kinds = ['resize', 'transcode', 'thumbnail'] as const;
    return { id: this.nextId++, kind: kinds[this.nextId % 3] ?? 'resize', workMs: 200 + Math.random() * 2800 };
  }

  /** Puts a job we could not start back on the queue, for another worker. */
  release(job: Job): void {
    this.returned.push(job);
  }

  async close(): Promise<void> {
    await sleep(20);
    this.closed = true;
  }
}

const log = pino({ level: process.env.LOG_LEVEL ?? 'info' });
const concurrency = Number(process.env.CONCURRENCY ?? 4);
const queue = new FakeQueue();
const tasks = new TaskTracker();
let done = 0;

const client = new HeartbeatClient({
  worker: process.env.WORKER_ID ?? 'example-worker',
  servers: process.env.HBAGG_NATS_URL ?? 'nats://127.0.0.1:4222',
  subjectPrefix: process.env.HBAGG_SUBJECT_PREFIX ?? 'hb',
  intervalMs: 1000,
  // Called before each beat: keep it cheap and synchronous.
  state: () => ({
    status: tasks.inflight > 0 ? 'busy' : 'idle',
    inflight: tasks.inflight,
    load: tasks.inflight / concurrency,
    meta: { done, version: '1.4.2' },
  }),
  logger: log.child({ component: 'heartbeat' }),
});

const shutdown = installGracefulShutdown({
  client,
  tasks,
  // The lanes below also watch shutdown.signal; this is where a real consumer would be paused.
  stopAccepting: () => log.info('no longer pulling jobs'),
  drainTimeoutMs: 10_000,
  hardTimeoutMs: 15_000,
  logger: log.child({ component: 'shutdown' }),
  onComplete: (summary) => log.info({ summary }, 'bye'),
});
shutdown.addCleanup('queue connection', () => queue.close());

async function handle(job: Job): Promise<void> {
  log.debug({ job }, 'job started');
  await sleep(job.workMs);
  done++;
  log.info({ id: job.id, kind: job.kind, ms: Math.round(job.workMs) }, 'job done');
}

/** One of CONCURRENCY loops: pull a job, run it, repeat until shutdown. */
async function lane(): Promise<void> {
  while (!shutdown.stopping) {
    const job = await queue.next(shutdown.signal);
    if (!job) return;
    try {
      await tasks.run(() => handle(job));
    } catch (err) {
      if (err instanceof TaskTrackerClosedError) {
        queue.release(job); // shutdown began between pulling and starting it
        return;
      }
      log.error({ err, id: job.id }, 'job failed');
    }
  }
}

// Work does not wait for NATS: start() connects in the background and never rejects.
void client.start();
log.info({ worker: client.worker, instance: client.instance, concurrency }, 'worker running; Ctrl-C to stop');
for (let i = 0; i < concurrency; i++) void lane();
