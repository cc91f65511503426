// Fires concurrent raw HTTP GETs from its own process (as a kubelet would be:
// not sharing the daemon's event loop) and prints one JSON line per probe set.
// Usage: node probe-storm.mjs <port> <json array of paths> [timeoutMs]
import net from 'node:net';

const port = Number(process.argv[2]);
const paths = JSON.parse(process.argv[3]);
const timeoutMs = Number(process.argv[4] ?? 5000);

function probe(path) {
  return new Promise((resolve) => {
    const start = performance.now();
    const socket = net.connect({ port, host: '127.0.0.1' });
    let buf = Buffer.alloc(0);
    let first;
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const responses = (buf.toString('latin1').match(/(?:^|\r\n)HTTP\/1\.[01] \d{3} /g) ?? []).length;
      resolve({ path, status: first?.status ?? 0, ms: first?.ms ?? performance.now() - start, body: first?.body ?? '', responses, closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (first) return;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length < end + 4 + length) return;
      first = {
        status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0),
        ms: performance.now() - start,
        body: buf.subarray(end + 4, end + 4 + length).toString('utf8'),
      };
    });
    socket.on('error', () => undefined);
    socket.on('close', () => finish(true));
    socket.once('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
  });
}

const results = await Promise.all(paths.map(probe));
// Bodies are large and alike: keep one per path and status.
const seen = new Set();
for (const r of results) {
  const key = `${r.path} ${r.status}`;
  if (seen.has(key)) r.body = undefined;
  else seen.add(key);
}
process.stdout.write(JSON.stringify(results));
