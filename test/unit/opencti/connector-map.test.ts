import { describe, expect, it } from 'vitest';
import { META, mapConnectors } from '../../../src/daemon/opencti/connector-map.js';
import type { PingWorker } from '../../../src/protocol/schemas.js';

const A = 'aaaaaaaa-0000-4000-8000-000000000001';
const B = 'bbbbbbbb-0000-4000-8000-000000000002';

function w(worker: string, state: PingWorker['state'], meta?: PingWorker['meta'], lastSeen = 1): PingWorker {
  const p: PingWorker = { worker, instance: `${worker}-i`, state, since: 0, first_seen: 0, last_seen: lastSeen, beats: 0, seq: 1 };
  if (meta) p.meta = meta;
  return p;
}

describe('which workers are OpenCTI connectors', () => {
  it('takes the id from meta first, then from the config map; others are unmapped with a reason', () => {
    const m = mapConnectors(
      [w('w1', 'active', { [META.id]: A }), w('w2', 'active'), w('w3', 'active'), w('w4', 'active', { [META.id]: 'nope' })],
      { w2: B },
    );
    expect([...m.connectors.keys()].sort()).toEqual([A, B]);
    expect(m.connectors.get(B)?.listed).toBe(true);
    expect(m.connectors.get(A)?.listed).toBe(false);
    expect(m.unmapped.map((u) => u.worker)).toEqual(['w3', 'w4']);
    expect(m.unmapped[1]?.reason).toContain('not a UUID');
  });

  it('makes one connector of replicas, live while any is active or draining', () => {
    const meta = { [META.id]: A };
    expect(mapConnectors([w('r1', 'stopped', meta), w('r2', 'draining', meta)], {}).connectors.get(A)?.live).toBe(true);
    const down = mapConnectors([w('r1', 'stopped', meta), w('r2', 'lost', meta)], {}).connectors.get(A);
    expect(down?.live).toBe(false);
    expect(down?.stoppedCleanly).toBe(false);
    expect(mapConnectors([w('r1', 'stopped', meta), w('r2', 'stopped', meta)], {}).connectors.get(A)?.stoppedCleanly).toBe(true);
  });

  it('takes state and connector info from the live replica seen last, info only when complete', () => {
    const info = { [META.runAndTerminate]: false, [META.buffering]: true, [META.queueThreshold]: 500, [META.queueMessagesSize]: 2 };
    const m = mapConnectors(
      [
        w('r1', 'active', { [META.id]: A, [META.state]: 'old', ...info }, 10),
        w('r2', 'active', { [META.id]: A.toUpperCase(), [META.state]: 'new', ...info }, 20),
        w('r3', 'stopped', { [META.id]: A, [META.state]: 'gone' }, 30),
      ],
      {},
    );
    const c = m.connectors.get(A);
    expect(c?.state).toBe('new');
    expect(c?.info).toEqual({ run_and_terminate: false, buffering: true, queue_threshold: 500, queue_messages_size: 2 });
    expect(c?.epoch).toBe('r1:r1-i,r2:r2-i');
    const partial = mapConnectors([w('r1', 'active', { [META.id]: A, [META.buffering]: true })], {}).connectors.get(A);
    expect(partial?.info).toBeUndefined();
    expect(partial?.state).toBeUndefined();
  });
});
