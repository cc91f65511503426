/**
 * The compiled configuration: every option defaulted, durations as `*Ms`
 * numbers. Produced once by `loadConfig()`; nothing downstream re-validates.
 * The file format (snake_case JSON) is described by the zod input schema in
 * `schema.ts` and in the README's configuration table.
 */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export interface NatsConfig {
  /** NATS server URLs. Default `["nats://127.0.0.1:4222"]`. */
  servers: string[];
  /** Subject prefix; beats on `<prefix>.beat.<worker>`. Default `hb`. */
  subjectPrefix: string;
  /** Connection name shown in NATS monitoring. Default `hbagg-<nodeId>`. */
  name: string;
  user?: string;
  pass?: string;
  token?: string;
  /** Path to a `.creds` file (JWT + nkey seed). */
  credsFile?: string;
  /** Path to a PEM CA bundle; enables TLS. */
  tlsCaFile?: string;
}

export type PlatformKind = 'hbagg' | 'opencti';

export interface OpenCtiConfig {
  /** Each live connector is pinged once per this. Default 120000. */
  pingEveryMs: number;
  /** pingConnector calls per GraphQL document. Default 1. */
  aliasesPerRequest: number;
  /** deleteConnector when a listed connector's workers all stop cleanly. Default false. */
  deleteOnStop: boolean;
  /** Worker id -> connector id (UUID). Default {}. */
  connectors: Record<string, string>;
  /** The platform's "active" rule. Default 300000 (OpenCTI's 5 minutes). */
  inactiveAfterMs: number;
}

export interface PlatformConfig {
  /** `hbagg` (batched ping, default) or `opencti`. */
  kind: PlatformKind;
  /** Where batched pings are POSTed (kind `opencti`: the OpenCTI base URL). Required by `hbagg run`. */
  url?: string;
  /** Bearer token (from the file, `platform.token_file` or the env). */
  token?: string;
  /** Per-request timeout. Default 5000. */
  timeoutMs: number;
  /** Entries per request before a ping is split into parts. Default 1000. */
  maxBatchWorkers: number;
  /** Upper clamp on a platform's Retry-After. Default 600000 (10 min). */
  maxRetryAfterMs: number;
  /** `auto`: delta pings when the platform offers them (contract 1.1); `off`: v1 pings only. Default `auto`. */
  delta: 'auto' | 'off';
  /** Settings of kind `opencti`. */
  opencti: OpenCtiConfig;
}

export interface HttpConfig {
  /** `host:port` of the daemon's HTTP interface. Default `127.0.0.1:9470`. */
  listen: string;
  host: string;
  port: number;
  /** When set, POST routes and GET /v1/workers need `authorization: Bearer <token>`. */
  token?: string;
  /** Request bodies over this are refused with 413. Default 65536. */
  maxBodyBytes: number;
  /** Whether GET /v1/workers shows meta values (they may hold secrets). Default false. */
  exposeMeta: boolean;
}

export interface FlushConfig {
  /** Shortest gap between pings. Default 1000. */
  minIntervalMs: number;
  /** Longest gap between pings when nothing changes. Default 30000. */
  maxIntervalMs: number;
  /** A transition is pinged within this long. Default 50. */
  urgentFlushMs: number;
  /** With delta pings, a full ping at least this often. Default 300000. */
  fullEveryMs: number;
}

export interface WorkersConfig {
  /** Floor of the silence that makes a worker `lost`. Default 3000. */
  lostAfterMinMs: number;
  /** Workers tracked at most; beats from further ids are rejected. Default 10000. */
  maxWorkers: number;
  /** How long retired instances are remembered. Default 600000, at least 600000. */
  tombstoneRetentionMs: number;
  /** Retired instances remembered at most. Default 100000. */
  maxTombstones: number;
  /** Draining lasts at most this when a Leave names no timeout. Default 30000. */
  defaultDrainTimeoutMs: number;
}

export interface HousekeepingConfig {
  /** node-cron expression for the summary log line. Default every minute. */
  summaryCron: string;
  /** node-cron expression for pruning tombstones and old lost entries. Default every 30 s. */
  pruneCron: string;
  /** node-cron expression for compacting the state journal. Default every 5 min. */
  compactCron: string;
}

export interface HbaggConfig {
  /** This node's name in pings. Default: the host name. */
  nodeId: string;
  nats: NatsConfig;
  platform: PlatformConfig;
  http: HttpConfig;
  flush: FlushConfig;
  workers: WorkersConfig;
  housekeeping: HousekeepingConfig;
  /** Where durable state (the terminal-state journal, the lock) lives. Default `./state`. */
  stateDir: string;
  logLevel: LogLevel;
  /** How long /healthz results are reused. Default 1000. */
  healthCacheMs: number;
  /** Hard limit on a clean stop. Default 10000. */
  shutdownTimeoutMs: number;
}
