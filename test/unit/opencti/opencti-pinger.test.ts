import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from '../../../src/core/registry.js';
import type { Instant } from '../../../src/core/time.js';
import { createLogger } from '../../../src/daemon/logger.js';
import { Metrics } from '../../../src/daemon/metrics.js';
import { META } from '../../../src/daemon/opencti/connector-map.js';
import type { GraphqlRequest } from '../../../src/daemon/opencti/documents.js';
import type { GraphqlResponse } from '../../../src/daemon/opencti/graphql-client.js';
import { OpenCtiPinger } from '../../../src/daemon/opencti/opencti-pinger.js';
import { sleep, waitFor } from '../../../testing/index.js';

const ID = 'aaaaaaaa-0000-4000-8000-000000000001';
const now = (): Instant => ({ wall: Date.now(), mono: performance.now() });
const answer = (data: unknown): GraphqlResponse => ({ status: 200, text: JSON.stringify({ data }), durationMs: 1 });
const pingers: OpenCtiPinger[] = [];

afterEach(async () => {
  await Promise.all(pingers.splice(0).map((p) => p.stop(performance.now() + 500)));
});

function setup(post: (req: GraphqlRequest) => Promise<GraphqlResponse>, deleteOnStop: boolean) {
  const registry = new Registry({ maxWorkers: 100, lostAfterMinMs: 60_000, tombstoneRetentionMs: 600_000, maxTombstones: 100, defaultDrainTimeoutMs: 30_000 });
  let snapshots = 0;
  const counted = {
    snapshot: () => {
      snapshots++;
      return registry.snapshot();
    },
    collect: () => registry.collect(),
    acknowledge: (...a: Parameters<Registry['acknowledge']>) => registry.acknowledge(...a),
  };
  const metrics = new Metrics({ workersByState: () => registry.countByState(), currentIntervalMs: () => 0, tombstones: () => 0, droppedDisplaced: () => 0, tombstonesEvictedEarly: () => 0 }, { defaultMetrics: false });
  const pinger = new OpenCtiPinger({
    registry: counted, metrics, clock: now, client: { post },
    log: createLogger('silent', new Writable({ write: (_c, _e, done) => done() })),
    config: { pingEveryMs: 60_000, aliasesPerRequest: 1, deleteOnStop, connectors: { w1: ID }, inactiveAfterMs: 300_000 },
    gate: { minIntervalMs: 1000, maxIntervalMs: 30_000, maxRetryAfterMs: 600_000 },
    requestTimeoutMs: 1000, urgentFlushMs: 50,
  });
  pingers.push(pinger);
  registry.applyBeat({ v: 1, worker: 'w1', instance: 'i1', seq: 1, interval_ms: 1000, meta: { [META.state]: '{}' } }, now());
  return { registry, pinger, snapshots: () => snapshots };
}

describe('the OpenCTI pinger (fake GraphQL poster)', () => {
  it('does not spin while a deleteConnector is in flight', async () => {
    let release: (() => void) | undefined;
    const { registry, pinger, snapshots } = setup((req) => {
      if (req.operationName === 'HbaggDeleteConnector') return new Promise((r) => (release = () => r(answer({ c0: ID }))));
      return Promise.resolve(answer({ c0: { id: ID, connector_state: '{}' } }));
    }, true);
    pinger.start();
    await waitFor(() => pinger.schedule.view(ID)?.outcome === 'ok');
    registry.applyLeave({ v: 1, worker: 'w1', instance: 'i1', seq: 2, phase: 'stopped' }, now());
    pinger.urgent();
    await waitFor(() => release !== undefined, { message: 'delete sent' });
    const before = snapshots();
    await sleep(300);
    expect(snapshots() - before).toBeLessThan(5);
    release?.();
    await waitFor(() => registry.snapshot().length === 0, { message: 'the stopped entry settled once the delete was answered' });
  });

  it('sends no final ping on stop, only the deletes a clean stop owes', async () => {
    const sent: string[] = [];
    const { registry, pinger } = setup((req) => {
      sent.push(req.operationName);
      return Promise.resolve(req.operationName === 'HbaggDeleteConnector' ? answer({ c0: ID }) : answer({ c0: { id: ID, connector_state: '{}' } }));
    }, true);
    pinger.start();
    await waitFor(() => sent.length === 1);
    registry.applyLeave({ v: 1, worker: 'w1', instance: 'i1', seq: 2, phase: 'stopped' }, now());
    await pinger.stop(performance.now() + 2000);
    expect(sent).toEqual(['HbaggPingConnectors', 'HbaggDeleteConnector']);
  });
});
