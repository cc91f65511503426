// The naive way, for the idle bench: what a worker author writes first. Parse
// every beat with JSON.parse, keep the latest per worker in a Map, POST the
// whole map every 30 s with fetch, answer /healthz. No journal, no pacing, no
// loss detection, no metrics: the cost of the bare job, not a product.
import http from 'node:http';
import { connect } from '@nats-io/transport-node';

const [url, prefix, platformUrl] = process.argv.slice(2);
const workers = new Map();
const nc = await connect({ servers: url, name: 'bench-naive', maxReconnectAttempts: -1 });
const dec = new TextDecoder();
nc.subscribe(`${prefix}.beat.*`, {
  callback: (err, msg) => {
    if (err) return;
    try {
      const b = JSON.parse(dec.decode(msg.data));
      if (typeof b.worker === 'string') workers.set(b.worker, { ...b, seen: Date.now() });
    } catch {
      // a naive daemon drops what it cannot read
    }
  },
});
let seq = 0;
setInterval(() => {
  const now = Date.now();
  const list = [...workers.values()].map((w) => ({
    worker: w.worker, instance: w.instance, state: now - w.seen > 3 * (w.interval_ms ?? 5000) ? 'lost' : 'active', status: w.status,
  }));
  fetch(platformUrl, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ v: 1, node: 'naive', batch: { seq: ++seq }, workers: list }),
  }).then((r) => r.arrayBuffer(), () => undefined);
}, 30_000);
const server = http.createServer((req, res) => res.end(req.url === '/healthz' ? 'ok' : ''));
server.listen(0, '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => {
  server.close();
  void nc.close().finally(() => process.exit(0));
});
