/** `hbagg demo`: NATS found or started, an in-process receiver, the daemon and simulated workers, then a summary. */
import { Demo, DemoStoppedError } from '../demo/demo.js';
import { NatsUnavailableError } from '../demo/nats.js';
import { formatSummary } from '../demo/summary.js';
import { flags, intFlag } from './flags.js';

export async function demo(args: string[], usage: string): Promise<number> {
  const values = flags('demo', args, usage, {
    duration: { type: 'string' }, workers: { type: 'string' }, nats: { type: 'string' }, log: { type: 'string' },
  });
  if (!values) return 2;
  const duration = intFlag('duration', values.duration, 1, 86_400);
  const workers = intFlag('workers', values.workers, 1, 100);
  for (const bad of [duration, workers]) {
    if (typeof bad === 'string') {
      console.error(`hbagg demo: ${bad}`);
      return 2;
    }
  }
  const d = new Demo({
    durationMs: typeof duration === 'number' ? duration * 1000 : undefined,
    workers: typeof workers === 'number' ? workers : undefined,
    natsUrl: values.nats,
    logFile: values.log,
  });
  let firstSignal: number | undefined;
  const onSignal = () => {
    if (firstSignal !== undefined) {
      // npx and tsx pass the terminal's Ctrl-C on, so one press can arrive twice: only a later one forces.
      if (Date.now() - firstSignal > 1_000 && d.state !== 'stopped') process.exit(130);
      return;
    }
    firstSignal = Date.now();
    // The hard deadline: whatever hangs, the demo ends.
    setTimeout(() => process.exit(1), 15_000).unref();
    void d.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // The terminal went away: stop as cleanly as on Ctrl-C (Node's default would leave nats-server running).
  process.on('SIGHUP', onSignal);
  try {
    await d.start();
  } catch (err) {
    if (err instanceof NatsUnavailableError) {
      console.error(err.message);
      return 1;
    }
    if (err instanceof DemoStoppedError) {
      console.error(err.message);
      return 0;
    }
    throw err;
  }
  const summary = await d.done;
  process.stdout.write(formatSummary(summary));
  return 0;
}
