/**
 * The ingest consumer, one process per run, in one of two modes:
 * - `ceiling`: a bare nats.js callback subscription that only counts messages;
 * - `ours`: the real `Daemon` (NATS -> size check -> parse -> validate ->
 *   registry), counted where NATS hands a beat to the intake.
 * The clock starts at message `warmup` (after JIT warm-up) and stops at `n`.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { Daemon } from '../src/daemon/daemon.js';
import { createLogger } from '../src/daemon/logger.js';
import { childArg, emit, serve } from './lib/child.js';
import { benchConfig } from './lib/daemon-config.js';

interface Arg {
  mode: 'ours' | 'ceiling';
  natsUrl: string;
  prefix: string;
  platformUrl: string;
  n: number;
  warmup: number;
  progressSubject: string;
  progressEvery: number;
}

const a = childArg<Arg>();
const ctl = await connect({ servers: a.natsUrl, name: 'bench-control' });
let count = 0;
let accepted = 0;
let rejected = 0;
let t0 = 0;
let c0: NodeJS.CpuUsage = { user: 0, system: 0 };

function onMessage(): void {
  count++;
  if (count === a.warmup) {
    t0 = performance.now();
    c0 = process.cpuUsage();
  }
  if (count % a.progressEvery === 0) ctl.publish(a.progressSubject, String(count));
  if (count === a.n) {
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(c0);
    const measured = a.n - a.warmup;
    emit('done', {
      beatsPerSec: (measured / ms) * 1000,
      cpuUsPerBeat: (cpu.user + cpu.system) / measured,
      cpuShare: (cpu.user + cpu.system) / 1000 / ms,
      accepted: a.mode === 'ours' ? accepted : count,
      rejected,
      ms,
    });
  }
}

let stop: () => Promise<void>;
if (a.mode === 'ceiling') {
  const nc: NatsConnection = await connect({ servers: a.natsUrl, name: 'bench-ceiling' });
  nc.subscribe(`${a.prefix}.beat.*`, { callback: () => onMessage() });
  await nc.flush();
  stop = () => nc.drain();
} else {
  const config = benchConfig({ natsUrl: a.natsUrl, prefix: a.prefix, platformUrl: a.platformUrl });
  const daemon = new Daemon(config, createLogger('error', pino.destination({ dest: 2, sync: true })));
  daemon.testHooks.onNatsBeat((r) => {
    if (r.ok) accepted++;
    else rejected++;
    onMessage();
  });
  await daemon.start();
  await daemon.natsReady();
  stop = () => daemon.stop();
}

serve({
  stop: async () => {
    await stop();
    await ctl.close();
    return { count };
  },
  exit: () => {
    setTimeout(() => process.exit(0), 10);
    return {};
  },
});
emit('ready');
