/**
 * Wire schemas of docs/PROTOCOL.md (wire format v1), shared by the daemon,
 * the client library and the JSON Schema export. Unknown fields are ignored
 * (stripped), as the contract says; everything else that breaks a rule is
 * rejected.
 */
import { z } from 'zod';

export const PROTOCOL_VERSION = 1 as const;
export const WORKER_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
export const MAX_BEAT_BYTES = 8 * 1024;
export const MAX_META_BYTES = 2 * 1024;
export const MAX_REASON_CHARS = 256;
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

/** Keys that some JSON consumers turn into prototype writes; never forwarded. */
export const RESERVED_META_KEYS: readonly string[] = ['__proto__', 'constructor', 'prototype'];

export const WorkerId = z.string().regex(WORKER_ID_PATTERN, 'must match ^[A-Za-z0-9_-]{1,128}$');
const Instance = z.string().min(1).max(64);
const Seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const Version = z.literal(PROTOCOL_VERSION);

export const Meta = z
  .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
  .superRefine((meta, ctx) => {
    // Reserved keys are checked on the raw input in decode.ts: an own `__proto__` does not survive parsing.
    const size = Buffer.byteLength(JSON.stringify(meta));
    if (size > MAX_META_BYTES) {
      ctx.addIssue({ code: 'custom', message: `serialized meta is ${size} bytes, at most ${MAX_META_BYTES}` });
    }
  });

export const WorkerStatus = z.enum(['idle', 'busy']);

export const Beat = z.object({
  v: Version,
  worker: WorkerId,
  instance: Instance,
  seq: Seq,
  interval_ms: z.number().int().min(100).max(600_000),
  ts: z.number().int().optional(),
  status: WorkerStatus.optional(),
  inflight: z.number().int().min(0).optional(),
  load: z.number().min(0).max(1).optional(),
  meta: Meta.optional(),
});
export type Beat = z.infer<typeof Beat>;

export const LeavePhase = z.enum(['draining', 'stopped']);
export type LeavePhase = z.infer<typeof LeavePhase>;

export const Leave = z.object({
  v: Version,
  worker: WorkerId,
  instance: Instance,
  seq: Seq,
  phase: LeavePhase,
  reason: z.string().max(MAX_REASON_CHARS).optional(),
  drain_timeout_ms: z.number().int().min(0).max(86_400_000).optional(),
});
export type Leave = z.infer<typeof Leave>;

export const LeaveReply = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), worker: WorkerId, instance: Instance, state: LeavePhase }),
  z.object({ ok: z.literal(false), error: z.string() }),
]);
export type LeaveReply = z.infer<typeof LeaveReply>;

export const WorkerState = z.enum(['active', 'draining', 'stopped', 'lost']);
export type WorkerState = z.infer<typeof WorkerState>;

export const PingWorker = z.object({
  worker: WorkerId,
  instance: Instance,
  state: WorkerState,
  since: z.number().int(),
  reason: z.string().optional(),
  first_seen: z.number().int(),
  last_seen: z.number().int(),
  beats: z.number().int().min(0),
  /**
   * Every beat of this instance the daemon accepted so far (never decreases,
   * survives a daemon restart): count by difference. Always sent by hbagg;
   * optional so pings of older daemons still validate.
   */
  beats_total: z.number().int().min(0).optional(),
  seq: Seq,
  interval_ms: z.number().int().optional(),
  status: WorkerStatus.optional(),
  inflight: z.number().int().min(0).optional(),
  load: z.number().min(0).max(1).optional(),
  meta: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
});
export type PingWorker = z.infer<typeof PingWorker>;

export const PingMode = z.enum(['full', 'delta']);
export type PingMode = z.infer<typeof PingMode>;

/** 1.6: count and XOR digest of a node's `active` and `draining` entries (core/roster.ts). */
export const Roster = z.object({
  count: z.number().int().min(0),
  xor: z.string().regex(/^[0-9a-f]{16}$/, 'must be 16 lowercase hex digits'),
});
export type Roster = z.infer<typeof Roster>;

export const Ping = z.object({
  v: Version,
  node: z.string().min(1),
  daemon: z.object({ instance: z.string(), version: z.string(), started_at: z.number().int() }),
  batch: z.object({
    id: z.string(),
    seq: z.number().int().min(0),
    part: z.number().int().min(1),
    parts: z.number().int().min(1),
    sent_at: z.number().int(),
    next_ping_within_ms: z.number().int().min(0),
    final: z.boolean(),
    /** 1.6: `full` lists every live entry, `delta` what changed since `base`. Absent: a v1 daemon (full). */
    mode: PingMode.optional(),
    /** contract 1.1, deltas only: the `seq` of the last ping of this daemon instance accepted completely. */
    base: z.number().int().min(0).optional(),
  }),
  /** 1.6: the node's live entries after this ping is applied. */
  roster: Roster.optional(),
  workers: z.array(PingWorker),
});
export type Ping = z.infer<typeof Ping>;

/** The platform's optional 2xx body. */
export const PlatformAnswer = z.object({
  next_interval_ms: z.number().int().min(0).optional(),
  /** 1.6: the platform takes delta pings (from the next ping on, while every 2xx says so). */
  delta: z.boolean().optional(),
  /** 1.6: the platform's view diverged; the next ping must be full. */
  resync: z.boolean().optional(),
});
