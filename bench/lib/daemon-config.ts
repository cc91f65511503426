/**
 * A daemon configuration for one bench run, built the way users build theirs:
 * a JSON file read by `loadConfig` (no environment), in a fresh temp directory
 * that also holds the state directory. Everything not named here is the default.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/index.js';
import type { HbaggConfig } from '../../src/config/types.js';

export interface BenchDaemonOptions {
  natsUrl: string;
  prefix: string;
  platformUrl: string;
  nodeId?: string;
  maxWorkers?: number;
  lostAfterMinMs?: number;
  shutdownTimeoutMs?: number;
  platformTimeoutMs?: number;
  logLevel?: 'error' | 'warn' | 'info' | 'silent';
}

const dirs: string[] = [];

export function benchConfig(o: BenchDaemonOptions): HbaggConfig {
  const dir = mkdtempSync(path.join(tmpdir(), 'hbagg-bench-'));
  if (dirs.length === 0) process.once('exit', () => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  dirs.push(dir);
  const raw = {
    node_id: o.nodeId ?? 'bench-node',
    nats: { servers: [o.natsUrl], subject_prefix: o.prefix },
    platform: { url: o.platformUrl, ...(o.platformTimeoutMs ? { timeout_ms: o.platformTimeoutMs } : {}) },
    http: { listen: '127.0.0.1:0' },
    workers: {
      ...(o.maxWorkers ? { max_workers: o.maxWorkers } : {}),
      ...(o.lostAfterMinMs ? { lost_after_min_ms: o.lostAfterMinMs } : {}),
    },
    state_dir: path.join(dir, 'state'),
    log_level: o.logLevel ?? 'error',
    ...(o.shutdownTimeoutMs ? { shutdown_timeout_ms: o.shutdownTimeoutMs } : {}),
  };
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(raw));
  return loadConfig({ file, env: {} });
}
