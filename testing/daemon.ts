/**
 * Starts a real Daemon in this process for integration tests: config through
 * the real loader (env form), HTTP on a free loopback port, a unique subject
 * prefix, a temporary state dir, logs captured in memory.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { loadConfig, type HbaggConfig } from '../src/config/index.js';
import { Daemon } from '../src/daemon/daemon.js';
import { createLogger } from '../src/daemon/logger.js';

export interface TestDaemon {
  daemon: Daemon;
  /** The config it runs with, and the logger it writes to. */
  config: HbaggConfig;
  log: Logger;
  prefix: string;
  /** `http://127.0.0.1:PORT` of the daemon's HTTP interface. */
  base: string;
  /** Every log line the daemon wrote, parsed. */
  logs: Record<string, unknown>[];
  stop(): Promise<void>;
}

export interface TestDaemonOptions {
  natsUrl: string;
  platformUrl: string;
  /** Extra HBAGG_* variables. */
  env?: Record<string, string>;
  /** A config file (JSON) to load before the env. */
  file?: string;
}

export function uniquePrefix(): string {
  return `t${randomBytes(4).toString('hex')}`;
}

export async function startTestDaemon(opts: TestDaemonOptions): Promise<TestDaemon> {
  const prefix = opts.env?.HBAGG_SUBJECT_PREFIX ?? uniquePrefix();
  const cfg = loadConfig({
    file: opts.file,
    requirePlatformUrl: true,
    env: {
      HBAGG_NODE_ID: 'test-node',
      HBAGG_NATS_URL: opts.natsUrl,
      HBAGG_PLATFORM_URL: opts.platformUrl,
      HBAGG_HTTP_LISTEN: '127.0.0.1:0',
      HBAGG_STATE_DIR: mkdtempSync(path.join(tmpdir(), 'hbagg-state-')),
      HBAGG_LOG_LEVEL: 'debug',
      ...opts.env,
      HBAGG_SUBJECT_PREFIX: prefix,
    },
  });
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const log = createLogger(cfg.logLevel, sink);
  const daemon = new Daemon(cfg, log);
  await daemon.start();
  await daemon.natsReady();
  const port = (await daemon.snapshot()).http?.port;
  return { daemon, config: cfg, log, prefix, base: `http://127.0.0.1:${port}`, logs, stop: () => daemon.stop() };
}

/** A plain NATS connection for publishing test beats. */
export function natsClient(url: string): Promise<NatsConnection> {
  return connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
}

export function beat(worker: string, seq: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ v: 1, worker, instance: `${worker}-i1`, seq, interval_ms: 1000, ...extra });
}
