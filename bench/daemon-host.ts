/**
 * Runs the real `Daemon` in its own process, as `hbagg run` would, and answers
 * the bench's questions over IPC: memory and CPU, registry size, stop time.
 */
import { pino } from 'pino';
import { Daemon } from '../src/daemon/daemon.js';
import { createLogger } from '../src/daemon/logger.js';
import { childArg, emit, fullGc, serve, usage } from './lib/child.js';
import { benchConfig, type BenchDaemonOptions } from './lib/daemon-config.js';

const config = benchConfig(childArg<BenchDaemonOptions>());
const log = createLogger(config.logLevel, pino.destination({ dest: 2, sync: true }));
const daemon = new Daemon(config, log);

const stats = async () => {
  const s = await daemon.snapshot();
  return { ...usage(), size: s.tracked, states: s.workers, accepted: s.beatsAccepted };
};

serve({
  stats,
  gc: () => {
    fullGc();
    return stats();
  },
  stop: async () => {
    const t0 = performance.now();
    await daemon.stop();
    return { stopMs: performance.now() - t0, state: daemon.state };
  },
  exit: () => {
    setTimeout(() => process.exit(0), 10);
    return {};
  },
});

await daemon.start();
await daemon.natsReady();
if (!(await daemon.snapshot()).nats.ready) {
  emit('failed', { error: 'daemon did not connect to NATS' });
  process.exit(1);
}
emit('ready', { httpPort: (await daemon.snapshot()).http?.port ?? 0 });
