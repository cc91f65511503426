/**
 * The effective configuration as a user would write it (snake_case, every
 * default spelled out), safe to print: `hbagg check-config` shows it and the
 * daemon may log it. Secrets become "[redacted]" so a reader can still see
 * that one is set; unset ones are left out.
 */
import { redactUrl } from '../util/redact-url.js';
import { hideUserinfo } from './checks.js';
import type { HbaggConfig } from './types.js';

export const REDACTED = '[redacted]';

const secret = (value: string | undefined) => (value === undefined ? undefined : REDACTED);

/** Drops undefined entries so the output reads like a hand-written file. */
function compact<T extends Record<string, unknown>>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function redactConfig(cfg: HbaggConfig): object {
  return {
    node_id: cfg.nodeId,
    nats: compact({
      // nats://user:pass@host carries a secret in the URL itself.
      servers: cfg.nats.servers.map(hideUserinfo),
      subject_prefix: cfg.nats.subjectPrefix,
      name: cfg.nats.name,
      user: cfg.nats.user,
      pass: secret(cfg.nats.pass),
      token: secret(cfg.nats.token),
      creds_file: cfg.nats.credsFile,
      tls_ca_file: cfg.nats.tlsCaFile,
    }),
    platform: compact({
      kind: cfg.platform.kind,
      url: cfg.platform.url === undefined ? undefined : redactUrl(cfg.platform.url),
      // A token read from token_file is shown as a token: the compiled form no longer knows the file.
      token: secret(cfg.platform.token),
      timeout_ms: cfg.platform.timeoutMs,
      max_batch_workers: cfg.platform.maxBatchWorkers,
      max_retry_after_ms: cfg.platform.maxRetryAfterMs,
      delta: cfg.platform.delta,
      opencti: {
        ping_every_ms: cfg.platform.opencti.pingEveryMs,
        aliases_per_request: cfg.platform.opencti.aliasesPerRequest,
        delete_on_stop: cfg.platform.opencti.deleteOnStop,
        connectors: cfg.platform.opencti.connectors,
        inactive_after_ms: cfg.platform.opencti.inactiveAfterMs,
      },
    }),
    http: compact({
      listen: cfg.http.listen,
      token: secret(cfg.http.token),
      max_body_bytes: cfg.http.maxBodyBytes,
    }),
    flush: {
      min_interval_ms: cfg.flush.minIntervalMs,
      max_interval_ms: cfg.flush.maxIntervalMs,
      urgent_flush_ms: cfg.flush.urgentFlushMs,
      full_every_ms: cfg.flush.fullEveryMs,
    },
    workers: {
      lost_after_min_ms: cfg.workers.lostAfterMinMs,
      max_workers: cfg.workers.maxWorkers,
      tombstone_retention_ms: cfg.workers.tombstoneRetentionMs,
      max_tombstones: cfg.workers.maxTombstones,
      default_drain_timeout_ms: cfg.workers.defaultDrainTimeoutMs,
    },
    housekeeping: {
      summary_cron: cfg.housekeeping.summaryCron,
      prune_cron: cfg.housekeeping.pruneCron,
      compact_cron: cfg.housekeeping.compactCron,
    },
    state_dir: cfg.stateDir,
    log_level: cfg.logLevel,
    health_cache_ms: cfg.healthCacheMs,
    shutdown_timeout_ms: cfg.shutdownTimeoutMs,
  };
}
