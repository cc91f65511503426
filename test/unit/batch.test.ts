/** Building and splitting one ping (docs/PROTOCOL.md section 3). */
import { describe, expect, it } from 'vitest';
import { batchId, buildPing, type BatchInput, type DaemonInfo } from '../../src/core/batch.js';
import type { SentRecord } from '../../src/core/registry.js';
import { Ping, type PingWorker } from '../../src/protocol/schemas.js';

const INFO: DaemonInfo = { node: 'node-a', instance: 'd41f', version: '1.0.0', startedAt: 1_763_719_000_000 };

function workers(n: number): { workers: PingWorker[]; sent: SentRecord[] } {
  const ws: PingWorker[] = [];
  const sent: SentRecord[] = [];
  for (let i = 0; i < n; i++) {
    ws.push({ worker: `w${i}`, instance: 'i1', state: 'active', since: 1, first_seen: 1, last_seen: 2, beats: i, seq: i });
    sent.push({ worker: `w${i}`, instance: 'i1', state: 'active', gen: 0, beats: i });
  }
  return { workers: ws, sent };
}

function input(n: number, partSize: number, extra: Partial<BatchInput> = {}): BatchInput {
  return { seq: 17, ...workers(n), partSize, sentAt: 1_763_719_200_123, nextPingWithinMs: 30_250, final: false, ...extra };
}

describe('buildPing', () => {
  it('builds one part with the id node:instance:seq when the workers fit', () => {
    const parts = buildPing(INFO, input(3, 1000));
    expect(parts).toHaveLength(1);
    expect(parts[0]!.body).toEqual({
      v: 1,
      node: 'node-a',
      daemon: { instance: 'd41f', version: '1.0.0', started_at: 1_763_719_000_000 },
      batch: { id: 'node-a:d41f:17', seq: 17, part: 1, parts: 1, sent_at: 1_763_719_200_123, next_ping_within_ms: 30_250, final: false },
      workers: workers(3).workers,
    });
    expect(parts[0]!.sent).toEqual(workers(3).sent);
    expect(Ping.safeParse(parts[0]!.body).success).toBe(true);
  });

  it('splits a ping into parts that share seq, each with its own id and its own sent records', () => {
    const parts = buildPing(INFO, input(5, 2, { final: true }));
    expect(parts.map((p) => p.body.batch)).toEqual([1, 2, 3].map((part) => ({
      id: `node-a:d41f:17:${part}`, seq: 17, part, parts: 3, sent_at: 1_763_719_200_123, next_ping_within_ms: 30_250, final: true,
    })));
    expect(parts.map((p) => p.body.workers.map((w) => w.worker))).toEqual([['w0', 'w1'], ['w2', 'w3'], ['w4']]);
    expect(parts.map((p) => p.sent.map((s) => s.worker))).toEqual([['w0', 'w1'], ['w2', 'w3'], ['w4']]);
    expect(new Set(parts.map((p) => p.body.batch.id)).size).toBe(3);
    for (const p of parts) expect(Ping.safeParse(p.body).success).toBe(true);
  });

  it('still yields one part, the node lease, when there are no workers', () => {
    const parts = buildPing(INFO, input(0, 1000));
    expect(parts).toHaveLength(1);
    expect(parts[0]!.body.batch).toMatchObject({ id: 'node-a:d41f:17', part: 1, parts: 1 });
    expect(parts[0]!.body.workers).toEqual([]);
    expect(parts[0]!.sent).toEqual([]);
  });

  it('puts one worker in each part when the part size is 1', () => {
    const parts = buildPing(INFO, input(3, 1));
    expect(parts.map((p) => [p.body.batch.id, p.body.workers.length, p.sent.length])).toEqual([
      ['node-a:d41f:17:1', 1, 1],
      ['node-a:d41f:17:2', 1, 1],
      ['node-a:d41f:17:3', 1, 1],
    ]);
  });

  it('treats a part size below 1 or fractional as a whole number of at least 1', () => {
    expect(buildPing(INFO, input(2, 0))).toHaveLength(2);
    expect(buildPing(INFO, input(5, 2.9))).toHaveLength(3);
  });

  it('makes an exact multiple of the part size into full parts only', () => {
    const parts = buildPing(INFO, input(4, 2));
    expect(parts.map((p) => p.body.workers.length)).toEqual([2, 2]);
  });
});

describe('batchId', () => {
  it('adds the part number only when a ping has several parts', () => {
    expect(batchId(INFO, 3, 1, 1)).toBe('node-a:d41f:3');
    expect(batchId(INFO, 3, 2, 4)).toBe('node-a:d41f:3:2');
  });
});
