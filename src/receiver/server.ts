/**
 * `startReceiver`: `createReceiver` listening on its own port, with a ring of
 * recent events and running totals (what `hbagg receive`, the demo and tests use).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WorkerState } from '../protocol/schemas.js';
import type { ReceiverEvent } from './ledger.js';
import { createReceiver, type CreateReceiverOptions, type ReceiverCounts, type ReceiverHandler } from './receiver.js';
import type { NodeView } from './views.js';

export interface ReceiverOptions extends Omit<CreateReceiverOptions, 'tokens'> {
  /** Default 0: any free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** When set, pings need `authorization: Bearer <token>` (401 otherwise). */
  token?: string;
  tokens?: string | readonly string[];
  /** Bodies over this get 413. Default 16 MiB. */
  maxBodyBytes?: number;
}

/** The handler's counts (pings, beats, rejected, duplicates, unavailable, entries, bytes, modes, conflicts, resyncs), plus: */
export interface ReceiverStats extends ReceiverCounts {
  nodes: { alive: number; expired: number; final: number };
  /** Current worker instances by state, over all nodes. */
  workers: Record<WorkerState, number>;
  /** Events seen, by `type.change` (e.g. `worker.draining`). */
  events: Record<string, number>;
}

export interface Receiver {
  /** `http://host:port`; pings go to any path under it (e.g. `/v1/heartbeats`). */
  readonly url: string;
  readonly port: number;
  /** The most recent events, oldest first (at most 1000). */
  readonly events: readonly ReceiverEvent[];
  readonly handler: ReceiverHandler;
  stats(): ReceiverStats;
  nodes(): NodeView[];
  /** Stops listening, then closes the receiver. Safe to call twice. */
  close(): Promise<void>;
}

const MAX_EVENTS = 1000;

export async function startReceiver(opts: ReceiverOptions = {}): Promise<Receiver> {
  const events: ReceiverEvent[] = [];
  const counts: Record<string, number> = {};
  const tokens = opts.tokens ?? (opts.token === undefined ? undefined : [opts.token]);
  const handler = await createReceiver({
    ...opts,
    ...(tokens === undefined ? {} : { tokens }),
    leaseCheckMs: opts.leaseCheckMs ?? 100,
    limits: { ...opts.limits, ...(opts.maxBodyBytes === undefined ? {} : { maxBodyBytes: opts.maxBodyBytes }) },
    onEvent: (e) => {
      events.push(e);
      if (events.length > MAX_EVENTS) events.shift();
      const key = `${e.type}.${e.change}`;
      counts[key] = (counts[key] ?? 0) + 1;
      opts.onEvent?.(e);
    },
  });
  const server = createServer(handler);
  server.keepAliveTimeout = 5_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await handler.close();
    throw err;
  }
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host}:${addr.port}`,
    port: addr.port,
    events,
    handler,
    nodes: () => handler.nodes(),
    stats(): ReceiverStats {
      const nodes = { alive: 0, expired: 0, final: 0 };
      const workers: Record<WorkerState, number> = { active: 0, draining: 0, stopped: 0, lost: 0 };
      for (const n of handler.nodes()) {
        nodes[n.state]++;
        for (const s of Object.keys(workers) as WorkerState[]) workers[s] += n.counts[s];
      }
      return { ...handler.counts(), nodes, workers, events: { ...counts } };
    },
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          setTimeout(() => server.closeAllConnections(), 500).unref();
        });
        await handler.close();
      })();
      return closing;
    },
  };
}
