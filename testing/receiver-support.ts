/**
 * Support for receiver tests: read the event stream with a durable consumer,
 * and a tiny HTTP proxy that hands requests to several receivers in turn.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { RecordEvent } from '../src/receiver/index.js';

/** Every event a durable consumer receives, acknowledged one by one (so each is consumed once). */
export class EventReader {
  readonly events: RecordEvent[] = [];
  private constructor(private readonly nc: NatsConnection, private readonly stream: string, private readonly durable: string) {}

  static async open(servers: string[], stream = 'HBAGG_EVENTS', durable = 'test-reader'): Promise<EventReader> {
    const nc = await connect({ servers, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    const jsm = await jetstreamManager(nc, { timeout: 5_000 });
    await jsm.consumers.add(stream, { durable_name: durable, ack_policy: AckPolicy.Explicit });
    return new EventReader(nc, stream, durable);
  }

  /** Fetches what arrived since the last call; returns all events so far. Errors (a member down) count as nothing new. */
  async poll(): Promise<RecordEvent[]> {
    try {
      const c = await jetstream(this.nc, { timeout: 3_000 }).consumers.get(this.stream, this.durable);
      const batch = await c.fetch({ max_messages: 500, expires: 1_000 });
      for await (const m of batch) {
        this.events.push(m.json<RecordEvent>());
        m.ack();
      }
    } catch {
      // The next poll tries again.
    }
    return this.events;
  }

  close(): Promise<void> {
    return this.nc.close();
  }
}

export interface RoundRobinProxy {
  readonly url: string;
  /** Requests each target answered. */
  readonly served: number[];
  /** Bodies of the requests answered 2xx. */
  readonly accepted: string[];
  close(): Promise<void>;
}

/**
 * Sends each request to the next target; when a target cannot be reached, it
 * answers 502 (the daemon retries later), as a load balancer without health checks would.
 */
export async function startRoundRobinProxy(targets: () => string[]): Promise<RoundRobinProxy> {
  let next = 0;
  const served: number[] = [];
  const accepted: string[] = [];
  const server: Server = createServer((req, res) => {
    const list = targets();
    const i = next++ % list.length;
    const target = new URL(req.url ?? '/', list[i]);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    const out = request(target, { method: req.method, headers: req.headers }, (answer) => {
      served[i] = (served[i] ?? 0) + 1;
      const status = answer.statusCode ?? 502;
      res.writeHead(status, answer.headers);
      answer.pipe(res);
      if (status >= 200 && status < 300) answer.on('end', () => accepted.push(Buffer.concat(chunks).toString('utf8')));
    });
    out.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `proxy: ${err.message}` }));
    });
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    served,
    accepted,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
