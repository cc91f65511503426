/**
 * The shared store: one JetStream KV entry per node (compare-and-set on the
 * entry's revision), a watch that keeps this replica's cache current, and a
 * stream of events (`<subject>.<node>`, `Nats-Msg-Id` = event id, so a
 * republished event is dropped by the server within the duplicate window).
 */
import { jetstream, jetstreamManager, JetStreamApiCodes, JetStreamApiError, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { orTimeout } from '../../util/index.js';
import type { NodeRecord } from '../record.js';
import { StoreUnavailableError, type ReceiverStore, type StoredNode } from './types.js';

export interface JetStreamStoreOptions {
  /** NATS server URLs (any member of the cluster). */
  servers: string[];
  /** KV bucket holding one entry per node. Default `hbagg_nodes`. */
  bucket?: string;
  /** Replicas of the bucket and of the event stream (1, 3 or 5). Default 1. */
  replicas?: number;
  /** Event stream name. Default `HBAGG_EVENTS`. */
  stream?: string;
  /** Events go to `<subject>.<node>`. Default `hbagg.events`. */
  subject?: string;
  /** Republished events within this window are dropped by the server. Default 600000. */
  duplicateWindowMs?: number;
  /** Events older than this leave the stream (a consumer further behind misses them). Default 7 days. */
  eventsMaxAgeMs?: number;
  /** Every store request gives up after this long. Default 2000. */
  timeoutMs?: number;
  /** The first connection must succeed within this long. Default 5000. */
  connectTimeoutMs?: number;
  /** Opening the bucket, the stream and the watch is retried until this long has passed. Default 30000. */
  startTimeoutMs?: number;
}

const SAFE_TOKEN = /^[A-Za-z0-9_-]{1,128}$/;

/** A node id as a KV key and a subject token: itself when safe, else `=` + base64url (never collides: `=` is not in safe ids). */
export function nodeToken(node: string): string {
  return SAFE_TOKEN.test(node) ? node : `=${Buffer.from(node, 'utf8').toString('base64url')}`;
}

const isConflict = (err: unknown) =>
  err instanceof JetStreamApiError &&
  (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);

function unavailable(what: string, err: unknown): StoreUnavailableError {
  return new StoreUnavailableError(`store ${what} failed: ${(err as Error).message}`, { cause: err });
}

export function jetstreamStore(opts: JetStreamStoreOptions): ReceiverStore {
  const bucket = opts.bucket ?? 'hbagg_nodes';
  const replicas = opts.replicas ?? 1;
  const streamName = opts.stream ?? 'HBAGG_EVENTS';
  const subject = opts.subject ?? 'hbagg.events';
  const timeout = opts.timeoutMs ?? 2_000;
  const cache = new Map<string, StoredNode>();
  let nc: NatsConnection | undefined;
  let js: JetStreamClient | undefined;
  let kv: KV | undefined;
  let closed = false;
  // While the connection is down, requests would only wait for their timeout: refuse at once.
  let disconnected = false;
  let stopWatch: (() => void) | undefined;

  // Keyed by KV key (the node's token), so the watch can skip what this replica wrote without parsing it.
  const remember = (key: string, stored: StoredNode) => {
    const have = cache.get(key);
    if (have === undefined || have.revision < stored.revision) cache.set(key, stored);
  };

  /**
   * Feeds the cache from the bucket: every last value, then every change.
   * Resolves once the watch exists; whenever it ends (an error, or stopped
   * after a reconnect) a new one is made, until the store closes.
   */
  const watch = async (): Promise<void> => {
    if (kv === undefined || closed) return;
    const it = await kv.watch({ key: '>' });
    stopWatch = () => it.stop();
    void (async () => {
      try {
        for await (const e of it) {
          if ((cache.get(e.key)?.revision ?? 0) >= e.revision) continue;
          if (e.operation === 'PUT') remember(e.key, { record: e.json<NodeRecord>(), revision: e.revision });
          else cache.delete(e.key);
        }
      } catch {
        // Made again below.
      }
      while (!closed) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        try {
          await watch();
          return;
        } catch {
          // The cluster may still be electing: try again.
        }
      }
    })();
  };

  /** The bucket and the event stream, made when missing. */
  const open = async (conn: NatsConnection) => {
    js = jetstream(conn, { timeout });
    const jsm = await jetstreamManager(conn, { timeout });
    kv = await new Kvm(js).create(bucket, { replicas, history: 1, timeout });
    try {
      await jsm.streams.add({
        name: streamName, subjects: [`${subject}.>`], num_replicas: replicas, duplicate_window: nanos(opts.duplicateWindowMs ?? 600_000),
        max_age: nanos(opts.eventsMaxAgeMs ?? 7 * 24 * 3_600_000),
      });
    } catch (err) {
      // Another replica made it first (maybe with other settings): use it as it is.
      await jsm.streams.info(streamName).catch(() => Promise.reject(err));
    }
  };

  /** The revision of the delete marker on `key`, if that is what the key holds. */
  const readMarker = async (key: string): Promise<number | undefined> => {
    try {
      const e = await connected().kv.get(key);
      return e !== null && e.operation !== 'PUT' ? e.revision : undefined;
    } catch (err) {
      throw unavailable('read', err);
    }
  };

  const connected = (): { kv: KV; js: JetStreamClient } => {
    if (kv === undefined || js === undefined || nc === undefined || nc.isClosed()) throw new StoreUnavailableError('store is not connected');
    if (disconnected) throw new StoreUnavailableError('store connection lost; reconnecting');
    return { kv, js };
  };

  return {
    kind: 'jetstream',
    async start() {
      const where = opts.servers.join(',');
      try {
        nc = await orTimeout(
          connect({ servers: opts.servers, name: 'hbagg-receiver', maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout }),
          opts.connectTimeoutMs ?? 5_000,
          `connecting to ${where}`,
        );
      } catch (err) {
        throw new StoreUnavailableError(`cannot reach the JetStream store at ${where}: ${(err as Error).message}`, { cause: err });
      }
      // A cluster electing leaders (a member just died) times requests out for a while: keep trying until the deadline.
      const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
      for (let attempt = 1; ; attempt++) {
        try {
          await open(nc);
          await watch();
          break;
        } catch (err) {
          if (Date.now() + 500 > deadline) {
            await nc.close().catch(() => undefined);
            throw new StoreUnavailableError(`cannot open the JetStream store at ${where} (${attempt} tries): ${(err as Error).message}`, { cause: err });
          }
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      }
      const conn = nc;
      void (async () => {
        for await (const s of conn.status()) {
          if (s.type === 'disconnect') disconnected = true;
          else if (s.type === 'reconnect') {
            disconnected = false;
            // What changed while we were away comes with a fresh watch (the loop in `watch` makes it).
            stopWatch?.();
          }
        }
      })();
    },
    cached: (node) => cache.get(nodeToken(node)),
    all: () => cache.values(),
    async read(node) {
      const key = nodeToken(node);
      let e;
      try {
        e = await connected().kv.get(key);
      } catch (err) {
        throw unavailable('read', err);
      }
      if (e === null || e.operation !== 'PUT') return undefined;
      const stored = { record: e.json<NodeRecord>(), revision: e.revision };
      remember(key, stored);
      return stored;
    },
    async swap(node, record, revision) {
      const key = nodeToken(node);
      const data = JSON.stringify(record);
      let next: number;
      try {
        next = await connected().kv.put(key, data, { previousSeq: revision, timeout });
      } catch (err) {
        if (!isConflict(err)) throw unavailable('write', err);
        // A node forgotten before (a delete marker holds its key) is created on top of the marker.
        const marker = revision === 0 ? await readMarker(key) : undefined;
        if (marker === undefined) return undefined;
        try {
          next = await connected().kv.put(key, data, { previousSeq: marker, timeout });
        } catch (err2) {
          if (isConflict(err2)) return undefined;
          throw unavailable('write', err2);
        }
      }
      remember(key, { record, revision: next });
      return next;
    },
    async remove(node, revision) {
      const key = nodeToken(node);
      try {
        await connected().kv.delete(key, { previousSeq: revision });
      } catch (err) {
        if (isConflict(err)) return false;
        throw unavailable('delete', err);
      }
      cache.delete(key);
      return true;
    },
    async publish(events) {
      const client = connected().js;
      try {
        // Sent in order on one connection; awaited together.
        await Promise.all(
          events.map((e) => client.publish(`${subject}.${nodeToken(e.node)}`, JSON.stringify(e), { msgID: e.id, timeout })),
        );
      } catch (err) {
        throw unavailable('publish', err);
      }
    },
    async check() {
      try {
        await orTimeout(connected().kv.status(), timeout, 'store status');
      } catch (err) {
        throw unavailable('status', err);
      }
    },
    async close() {
      closed = true;
      stopWatch?.();
      await nc?.close().catch(() => undefined);
    },
  };
}
