// N quiet workers beating at 1 Hz each, spread evenly over the second (one
// publish every 1000/N ms, in 10 ms slots): the load of a busy node at rest.
import { connect } from '@nats-io/transport-node';

const [url, prefix, nArg] = process.argv.slice(2);
const n = Number(nArg);
const nc = await connect({ servers: url, name: 'bench-quiet-workers' });
const enc = new TextEncoder();
const instance = Math.random().toString(16).slice(2, 18).padEnd(16, '0');
const seqs = new Array(n).fill(0);
const SLOT_MS = 10;
const perSlot = Math.ceil(n / (1000 / SLOT_MS));
let next = 0;
setInterval(() => {
  for (let k = 0; k < perSlot; k++) {
    const i = next;
    next = (next + 1) % n;
    const worker = `q-${String(i).padStart(5, '0')}`;
    const seq = ++seqs[i];
    nc.publish(
      `${prefix}.beat.${worker}`,
      enc.encode(`{"v":1,"worker":"${worker}","instance":"${instance}","seq":${seq},"interval_ms":1000,"ts":${Date.now()},"status":"idle","inflight":0,"load":0.1}`),
    );
  }
}, SLOT_MS);
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void nc.drain().finally(() => process.exit(0));
});
