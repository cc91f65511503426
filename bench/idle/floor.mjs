// The floor of the idle bench: a bare nats.js callback subscriber on the beat
// wildcard that only counts what it gets. Plain JavaScript, no loader, so its
// figure is what any process on the bus costs at least.
import { connect } from '@nats-io/transport-node';

const [url, subject] = process.argv.slice(2);
const nc = await connect({ servers: url, name: 'bench-floor' });
let n = 0;
nc.subscribe(subject, { callback: () => void n++ });
await nc.flush();
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void nc.close().finally(() => process.exit(0));
});
