/**
 * Building one ping from the registry's entries: split into parts of at most
 * `partSize` entries that share `seq`, each with its own id. Pure.
 */
import type { Ping, PingMode, PingWorker } from '../protocol/schemas.js';
import type { SentRecord } from './registry.js';
import type { RosterValue } from './roster.js';

export interface DaemonInfo {
  node: string;
  instance: string;
  version: string;
  startedAt: number;
}

export interface PingPart {
  body: Ping;
  sent: SentRecord[];
}

export interface BatchInput {
  seq: number;
  workers: readonly PingWorker[];
  sent: readonly SentRecord[];
  partSize: number;
  sentAt: number;
  nextPingWithinMs: number;
  final: boolean;
  /** contract 1.1 (absent when deltas are off: a v1 ping): the same in every part; `roster` is after the whole ping. */
  delta?: { mode: PingMode; base?: number; roster: RosterValue };
}

export function batchId(info: DaemonInfo, seq: number, part: number, parts: number): string {
  const base = `${info.node}:${info.instance}:${seq}`;
  return parts === 1 ? base : `${base}:${part}`;
}

export function buildPing(info: DaemonInfo, input: BatchInput): PingPart[] {
  const size = Math.max(1, Math.floor(input.partSize));
  const parts = Math.max(1, Math.ceil(input.workers.length / size));
  const out: PingPart[] = [];
  for (let i = 0; i < parts; i++) {
    const from = i * size;
    out.push({
      body: {
        v: 1,
        node: info.node,
        daemon: { instance: info.instance, version: info.version, started_at: info.startedAt },
        batch: {
          id: batchId(info, input.seq, i + 1, parts),
          seq: input.seq,
          part: i + 1,
          parts,
          sent_at: input.sentAt,
          next_ping_within_ms: input.nextPingWithinMs,
          final: input.final,
          ...(input.delta === undefined ? {} : { mode: input.delta.mode }),
          ...(input.delta?.base === undefined ? {} : { base: input.delta.base }),
        },
        ...(input.delta === undefined ? {} : { roster: input.delta.roster }),
        workers: input.workers.slice(from, from + size),
      },
      sent: input.sent.slice(from, from + size),
    });
  }
  return out;
}
