/**
 * The ingest publisher, in its own process so it does not share an event loop
 * with what it measures: pre-encodes every message, warms up on a subject
 * nobody listens to, then publishes them as fast as it can, flushing every
 * `flushEvery`. It never runs more than
 * `window` messages ahead of what the consumer reported, so a slow consumer
 * is measured at its own pace instead of being cut off by nats-server as a
 * slow consumer.
 */
import { connect } from '@nats-io/transport-node';
import { beatJson, encoder, workerId } from './lib/beats.js';
import { childArg, emit } from './lib/child.js';

interface Arg {
  natsUrl: string;
  prefix: string;
  workers: number;
  n: number;
  instance: string;
  window: number;
  flushEvery: number;
  progressSubject: string;
  deadlineMs: number;
}

const a = childArg<Arg>();
const subjects: string[] = [];
const payloads: Uint8Array[] = [];
for (let k = 0; k < a.n; k++) {
  const w = workerId(k % a.workers);
  subjects.push(`${a.prefix}.beat.${w}`);
  payloads.push(encoder.encode(beatJson(w, a.instance, Math.floor(k / a.workers) + 1, 1000)));
}

const nc = await connect({ servers: a.natsUrl, name: 'bench-publisher' });
let consumed = 0;
let wake: (() => void) | undefined;
nc.subscribe(a.progressSubject, {
  callback: (_err, msg) => {
    consumed = Number(msg.string());
    wake?.();
  },
});
await nc.flush();

// Warm the publishing path up (JIT) on a subject nobody listens to, so short runs are not publisher-cold.
const warmSubject = `${a.progressSubject}.warmup`;
for (let k = 0; k < Math.min(a.n, 50_000); k++) {
  nc.publish(warmSubject, payloads[k]);
  if ((k + 1) % a.flushEvery === 0) await nc.flush();
}
await nc.flush();

const deadline = performance.now() + a.deadlineMs;
const t0 = performance.now();
let waits = 0;
let k = 0;
for (; k < a.n && performance.now() < deadline; k++) {
  nc.publish(subjects[k] as string, payloads[k]);
  if ((k + 1) % a.flushEvery === 0) {
    await nc.flush();
    while (k + 1 - consumed > a.window && performance.now() < deadline) {
      waits++;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 20);
      });
    }
  }
}
await nc.flush();
const ms = performance.now() - t0;
emit('published', { published: k, ms, msgsPerSec: (k / ms) * 1000, windowWaits: waits, bytes: payloads[0]?.byteLength ?? 0 });
await nc.close();
process.exit(0);
