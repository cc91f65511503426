/**
 * Simulated workers beating at a fixed interval, without one timer per
 * worker: one 100 ms tick publishes the tenth of each group whose turn it is
 * (worker i beats on ticks where tick % 10 == i % 10), so every worker beats
 * once per `ticksPerBeat` ticks. Runs for `durationMs`, then reports counts.
 */
import { connect } from '@nats-io/transport-node';
import { beatJson, newInstance, workerId } from './lib/beats.js';
import { childArg, emit } from './lib/child.js';

interface Group {
  prefix: string;
  workers: number;
}
interface Arg {
  natsUrl: string;
  groups: Group[];
  durationMs: number;
  intervalMs: number;
}

const TICK_MS = 100;
const a = childArg<Arg>();
const ticksPerBeat = Math.max(1, Math.round(a.intervalMs / TICK_MS));
const nc = await connect({ servers: a.natsUrl, name: 'bench-beat-loop' });
const state = a.groups.map((g) => ({ ...g, instance: newInstance(), seq: 0, published: 0, lateTicks: 0 }));

const t0 = performance.now();
emit('started', { at: Date.now() });
let tick = 0;
await new Promise<void>((resolve) => {
  const step = () => {
    const slot = tick % ticksPerBeat;
    if (slot === 0) for (const s of state) s.seq++;
    for (const s of state) {
      for (let i = slot; i < s.workers; i += ticksPerBeat) {
        const w = workerId(i);
        nc.publish(`${s.prefix}.beat.${w}`, beatJson(w, s.instance, s.seq, a.intervalMs));
        s.published++;
      }
    }
    tick++;
    const next = t0 + tick * TICK_MS;
    if (next - t0 >= a.durationMs) return resolve();
    // Scheduled against the start time, so the rate does not drift with timer lateness.
    setTimeout(step, Math.max(0, next - performance.now()));
  };
  step();
});
await nc.flush();
emit('done', {
  at: Date.now(),
  ms: performance.now() - t0,
  groups: state.map((s) => ({ prefix: s.prefix, workers: s.workers, published: s.published })),
});
await nc.close();
process.exit(0);
