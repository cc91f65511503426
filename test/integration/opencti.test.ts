/**
 * platform.kind "opencti" end to end: a real nats-server, a real daemon, and
 * a GraphQL platform stub built from OpenCTI's connector schema with its
 * alias protection (testing/opencti-stub.ts). The period is shortened
 * together with the stub's "5 minutes" (platform.opencti.inactive_after_ms),
 * so the config check that refuses unsafe periods still holds.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { META } from '../../src/daemon/opencti/connector-map.js';
import { MAX_IN_FLIGHT } from '../../src/daemon/opencti/opencti-pinger.js';
import { natsClient, sleep, startNatsServer, startTestDaemon, waitFor, type NatsServerHandle, type TestDaemon } from '../../testing/index.js';
import { startOpenCtiStub, type OpenCtiStub, type OpenCtiStubOptions } from '../../testing/opencti-stub.js';

const PERIOD = 2000;
const INACTIVE = 6000;
const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

interface Beater {
  worker: string;
  meta?: Record<string, string | number | boolean>;
}

describe('platform.kind opencti against an OpenCTI stub', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await natsClient(nats.url);
  });

  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  async function start(opencti: Record<string, unknown>, stubOpts: OpenCtiStubOptions = {}): Promise<{ d: TestDaemon; stub: OpenCtiStub }> {
    const stub = await startOpenCtiStub({ inactiveAfterMs: INACTIVE, ...stubOpts });
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'hbagg-opencti-')), 'config.json');
    writeFileSync(file, JSON.stringify({
      platform: { kind: 'opencti', timeout_ms: 800, opencti: { ping_every_ms: PERIOD, inactive_after_ms: INACTIVE, ...opencti } },
    }));
    const d = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, file });
    return { d, stub };
  }

  /** Beats for every worker every 300 ms until stopped (or until a worker is left out with `drop`). */
  function beatAll(prefix: string, workers: Beater[]): { stop(): void; drop(worker: string): void } {
    let seq = 0;
    const gone = new Set<string>();
    const send = () => {
      seq++;
      for (const w of workers) {
        if (gone.has(w.worker)) continue;
        const b = { v: 1, worker: w.worker, instance: `${w.worker}-i1`, seq, interval_ms: 1000, ...(w.meta ? { meta: w.meta } : {}) };
        nc.publish(`${prefix}.beat.${w.worker}`, JSON.stringify(b));
      }
    };
    send();
    const timer = setInterval(send, 300);
    return { stop: () => clearInterval(timer), drop: (w) => gone.add(w) };
  }

  async function leave(d: TestDaemon, worker: string): Promise<void> {
    const res = await fetch(`${d.base}/v1/leave`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ v: 1, worker, instance: `${worker}-i1`, seq: 1_000_000, phase: 'stopped' }),
    });
    expect(res.status).toBe(200);
  }

  describe('with OpenCTI\'s default protection (one pingConnector per document)', () => {
    let d: TestDaemon;
    let stub: OpenCtiStub;
    let beats: ReturnType<typeof beatAll>;
    const single = uuid(1);
    const stateful = uuid(2);
    const reporting = uuid(3);
    const replicated = uuid(4);
    const mapped = uuid(5);
    const unknown = uuid(99);
    const known = [single, stateful, reporting, replicated, mapped];

    beforeAll(async () => {
      ({ d, stub } = await start({ connectors: { 'mapped-w': mapped } }));
      for (const id of known) stub.register(id);
      stub.register(stateful, { state: '{"last_run":1700000000}' });
      beats = beatAll(d.prefix, [
        { worker: 'single-w', meta: { [META.id]: single } },
        { worker: 'stateful-w', meta: { [META.id]: stateful } },
        { worker: 'reporting-w', meta: { [META.id]: reporting, [META.state]: '{"cursor":5}' } },
        { worker: 'rep-a', meta: { [META.id]: replicated } },
        { worker: 'rep-b', meta: { [META.id]: replicated } },
        { worker: 'rep-c', meta: { [META.id]: replicated } },
        { worker: 'mapped-w' },
        { worker: 'unknown-w', meta: { [META.id]: unknown } },
        { worker: 'plain-w' },
      ]);
      await waitFor(() => known.every((id) => stub.pingsOf(id).length > 0), { timeoutMs: 10_000, message: 'every connector pinged once' });
    }, 30_000);

    afterAll(async () => {
      beats?.stop();
      await d?.stop();
      await stub?.close();
    });

    it('keeps every connector of beating workers active past the platform\'s inactivity limit', async () => {
      const until = Date.now() + INACTIVE + PERIOD;
      while (Date.now() < until) {
        for (const id of known) expect(stub.active(id), `connector ${id} active`).toBe(true);
        await sleep(200);
      }
      for (const id of known) expect(stub.pingsOf(id).length).toBeGreaterThanOrEqual(3);
    }, 30_000);

    it('never replaces a stored state by null: it reads it first, or sends what the worker reports', () => {
      for (const id of known) {
        const states = stub.pingsOf(id).map((p) => p.state);
        if (id === stateful) expect(new Set(states)).toEqual(new Set(['{"last_run":1700000000}']));
        if (id === reporting) expect(new Set(states)).toEqual(new Set(['{"cursor":5}']));
        expect(states).not.toContain(undefined);
      }
      expect(stub.connectors.get(stateful)?.connector_state).toBe('{"last_run":1700000000}');
      expect(stub.calls.some((c) => c.fields.includes('connector'))).toBe(true);
    });

    it('gives replicas sharing an id one ping per period', () => {
      const rep = stub.pingsOf(replicated);
      const one = stub.pingsOf(single);
      expect(rep.length).toBeLessThanOrEqual(one.length + 1);
      const gaps = rep.slice(2).map((p, i) => p.at - (rep[i + 1]?.at ?? 0));
      for (const gap of gaps) expect(gap).toBeGreaterThan(PERIOD / 2 - 100);
    });

    it('sends no request that fails validation', () => {
      expect(stub.validationFailures()).toEqual([]);
      expect(stub.calls.every((c) => c.fields.length <= 2)).toBe(true);
    });

    it('tries an unknown id with backoff, logs it once, and does not stall the others', () => {
      // Read first (its state is unknown): connector(id) answers null, so no ping is even sent.
      const tries = stub.calls.filter((c) => c.ids.includes(unknown));
      expect(tries.length).toBeGreaterThanOrEqual(1);
      expect(tries.every((c) => c.fields.every((f) => f === 'connector'))).toBe(true);
      expect(tries.length).toBeLessThan(stub.pingsOf(single).length);
      const logged = d.logs.filter((l) => l.connector === unknown && String(l.msg).includes('no connector with this id'));
      expect(logged).toHaveLength(1);
      const plain = d.logs.filter((l) => l.worker === 'plain-w' && String(l.msg).includes('not an OpenCTI connector'));
      expect(plain).toHaveLength(1);
    });

    it('reports connector pings and states in /metrics and a healthy platform in /healthz', async () => {
      const text = await (await fetch(`${d.base}/metrics`)).text();
      expect(text).toMatch(/hbagg_opencti_connector_pings_total\{outcome="ok"\} [1-9]/);
      expect(text).toMatch(/hbagg_opencti_state_reads_total\{outcome="unknown"\} [1-9]/);
      expect(text).toContain('hbagg_opencti_connectors{state="pinged"} 5');
      expect(text).toContain('hbagg_opencti_connectors{state="unknown"} 1');
      const health = (await (await fetch(`${d.base}/healthz`)).json()) as { checks: Record<string, { status: string }> };
      expect(health.checks.platform?.status).toBe('ok');
    });

    it('sends a stopped connector no ping afterwards', async () => {
      beats.drop('single-w');
      await leave(d, 'single-w');
      const after = Date.now();
      const before = stub.pingsOf(single).length;
      await sleep(2 * PERIOD);
      expect(stub.pingsOf(single).filter((p) => p.at > after + 100)).toEqual([]);
      expect(stub.pingsOf(single).length).toBeLessThanOrEqual(before + 1);
      expect(stub.pingsOf(mapped).some((p) => p.at > after)).toBe(true);
    }, 20_000);
  });

  describe('with the operator\'s limit raised to 25', () => {
    it('puts up to 25 pingConnector calls in one document', async () => {
      const { d, stub } = await start({ aliases_per_request: 25 }, { mutationDefault: 25, queryDefault: 25 });
      const ids = Array.from({ length: 30 }, (_, i) => uuid(100 + i));
      for (const id of ids) stub.register(id, { state: '{}' });
      // Reports its state, so it is pinged without a read: OpenCTI's error comes back for its alias alone.
      const unknown = uuid(199);
      const beats = beatAll(d.prefix, [...ids, unknown].map((id, i) => ({ worker: `w${i}`, meta: { [META.id]: id, [META.state]: '{"n":1}' } })));
      try {
        await waitFor(() => ids.every((id) => stub.pingsOf(id).length >= 3), { timeoutMs: 15_000, message: 'three pings each' });
        const pings = stub.calls.filter((c) => c.fields.includes('pingConnector'));
        expect(Math.max(...pings.map((c) => c.fields.length))).toBeGreaterThan(1);
        expect(Math.max(...pings.map((c) => c.fields.length))).toBeLessThanOrEqual(25);
        // Batched: far fewer documents than connector pings.
        const total = ids.reduce((n, id) => n + stub.pingsOf(id).length, 0);
        expect(pings.length).toBeLessThan(total / 3);
        expect(stub.validationFailures()).toEqual([]);
        const withUnknown = pings.filter((c) => c.ids.includes(unknown));
        expect(withUnknown[0]?.errors).toEqual(['No connector found with the specified ID']);
        expect(withUnknown[0]?.ids.length).toBeGreaterThan(1);
        expect(withUnknown.length).toBeLessThan(3);
      } finally {
        beats.stop();
        await d.stop();
        await stub.close();
      }
    }, 30_000);
  });

  describe('asked for 25 aliases while OpenCTI allows one', () => {
    it('drops to the limit from "exceeded (max: N)", logs it once and carries on', async () => {
      const { d, stub } = await start({ aliases_per_request: 25 });
      const ids = Array.from({ length: 30 }, (_, i) => uuid(200 + i));
      for (const id of ids) stub.register(id);
      const beats = beatAll(d.prefix, ids.map((id, i) => ({ worker: `f${i}`, meta: { [META.id]: id, [META.state]: '{}' } })));
      try {
        await waitFor(() => ids.every((id) => stub.pingsOf(id).length >= 2), { timeoutMs: 15_000, message: 'two pings each' });
        const failed = stub.validationFailures();
        expect(failed.length).toBeGreaterThanOrEqual(1);
        expect(failed.length).toBeLessThanOrEqual(MAX_IN_FLIGHT);
        expect(failed[0]?.errors[0]).toContain('exceeded (max: 1)');
        const lastFailure = Math.max(...failed.map((c) => c.at));
        expect(stub.calls.filter((c) => c.at > lastFailure).every((c) => c.status === 200)).toBe(true);
        expect(d.logs.filter((l) => String(l.msg).includes('limits aliased calls'))).toHaveLength(1);
        for (const id of ids) expect(stub.active(id)).toBe(true);
      } finally {
        beats.stop();
        await d.stop();
        await stub.close();
      }
    }, 30_000);
  });

  describe('with the query limit lowered to 1 by the operator', () => {
    it('learns the read limit apart from the ping limit, and never pings without the stored state', async () => {
      const { d, stub } = await start({ aliases_per_request: 3 }, { mutationDefault: 3, queryDefault: 1 });
      const ids = [uuid(500), uuid(501), uuid(502)];
      for (const id of ids) stub.register(id, { state: `{"id":"${id}"}` });
      const beats = beatAll(d.prefix, ids.map((id, i) => ({ worker: `q${i}`, meta: { [META.id]: id } })));
      try {
        await waitFor(() => ids.every((id) => stub.pingsOf(id).length > 0), { timeoutMs: 10_000 });
        const failed = stub.validationFailures();
        expect(failed.length).toBeGreaterThanOrEqual(1);
        expect(failed[0]?.errors[0]).toContain('Query->connector has been exceeded (max: 1)');
        expect(failed.every((c) => c.fields.every((f) => f === 'connector'))).toBe(true);
        expect(stub.calls.filter((c) => c.fields.includes('pingConnector')).every((c) => c.status === 200)).toBe(true);
        for (const id of ids) expect(stub.pingsOf(id).map((p) => p.state)).toEqual([`{"id":"${id}"}`]);
      } finally {
        beats.stop();
        await d.stop();
        await stub.close();
      }
    }, 30_000);
  });

  describe('when OpenCTI is busy', () => {
    it('waits for Retry-After before the next request, then pings again', async () => {
      const id = uuid(400);
      const { d, stub } = await start({});
      stub.register(id);
      const beats = beatAll(d.prefix, [{ worker: 'busy-w', meta: { [META.id]: id, [META.state]: '{}' } }]);
      try {
        await waitFor(() => stub.pingsOf(id).length > 0, { timeoutMs: 10_000 });
        stub.failNext(1, 503, { 'retry-after': '3' });
        const refused = await waitFor(() => stub.calls.find((c) => c.status === 503), { timeoutMs: 10_000 });
        const next = await waitFor(() => stub.calls.find((c) => c.at > refused.at), { timeoutMs: 10_000 });
        expect(next.at - refused.at).toBeGreaterThanOrEqual(2900);
        expect(next.status).toBe(200);
        expect(d.logs.some((l) => String(l.msg).includes('OpenCTI request not accepted'))).toBe(true);
      } finally {
        beats.stop();
        await d.stop();
        await stub.close();
      }
    }, 30_000);
  });

  describe('delete_on_stop', () => {
    it('deletes a listed connector when its worker stops cleanly, and only that one', async () => {
      const listed = uuid(300);
      const byMeta = uuid(301);
      const { d, stub } = await start({ delete_on_stop: true, connectors: { 'del-w': listed } });
      stub.register(listed);
      stub.register(byMeta);
      const beats = beatAll(d.prefix, [{ worker: 'del-w', meta: { [META.state]: '{}' } }, { worker: 'meta-w', meta: { [META.id]: byMeta, [META.state]: '{}' } }]);
      try {
        await waitFor(() => stub.pingsOf(listed).length > 0 && stub.pingsOf(byMeta).length > 0, { timeoutMs: 10_000 });
        beats.drop('del-w');
        beats.drop('meta-w');
        await leave(d, 'del-w');
        await leave(d, 'meta-w');
        await waitFor(() => !stub.connectors.has(listed), { timeoutMs: 10_000, message: 'listed connector deleted' });
        await sleep(500);
        expect(stub.connectors.has(byMeta)).toBe(true);
        expect(stub.calls.filter((c) => c.fields.includes('deleteConnector'))).toHaveLength(1);
      } finally {
        beats.stop();
        await d.stop();
        await stub.close();
      }
    }, 30_000);
  });
});
