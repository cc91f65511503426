/**
 * Runs the reference receiver (`hbagg receive`) in its own process, so the
 * bench can read the CPU it spends on the pings it is sent, and nothing else.
 */
import { startReceiver } from '../src/receiver/index.js';
import { childArg, emit, serve, usage } from './lib/child.js';

const arg = childArg<{ delta: boolean }>();
// Leases are checked once a minute: the bench sends minutes of traffic in seconds.
const r = await startReceiver({ delta: arg.delta, leaseCheckMs: 60_000 });

serve({
  usage: () => ({ ...usage(), ...r.stats() }),
  exit: () => {
    setTimeout(() => process.exit(0), 10);
    return {};
  },
});
emit('ready', { url: r.url });
