/**
 * The daemon as a NATS micro service (README "Many nodes"): discovery
 * answers with the documented metadata and counters, the `workers` and
 * `status` endpoints, a twin found after start, and the registration's
 * lifecycle across a NATS restart and a stop.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { headers, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { VERSION } from '../../src/daemon/daemon.js';
import type { StatusBody } from '../../src/daemon/fleet/endpoints.js';
import { TwinGuard } from '../../src/daemon/fleet/twin-guard.js';
import { runFleet } from '../../src/fleet/index.js';
import {
  beat,
  natsClient,
  startNatsServer,
  startPlatformStub,
  startTestDaemon,
  waitFor,
  type NatsServerHandle,
  type PlatformStub,
  type TestDaemon,
} from '../../testing/index.js';

const json = <T>(m: Msg): T => JSON.parse(m.string()) as T;

interface Info {
  type: string;
  name: string;
  id: string;
  version: string;
  metadata: Record<string, string>;
  endpoints: { name: string; subject: string; queue_group: string }[];
}
interface Stats {
  type: string;
  id: string;
  started: string;
  endpoints: { name: string; num_requests: number; num_errors: number; last_error: string; processing_time: number; average_processing_time: number }[];
}

describe('the hbagg NATS service', () => {
  let nats: NatsServerHandle;
  let stub: PlatformStub;
  let nc: NatsConnection;
  let d: TestDaemon | undefined;

  beforeAll(async () => {
    nats = await startNatsServer();
    stub = await startPlatformStub();
    nc = await natsClient(nats.url);
  });
  afterEach(async () => {
    await d?.stop();
    d = undefined;
    stub.respondWith({ status: 200, body: {} });
  });
  afterAll(async () => {
    await nc?.close();
    await stub?.close();
    await nats?.stop();
  });

  /** The id of `t`'s service, found by discovery (undefined until it answers). */
  const serviceId = async (t: TestDaemon): Promise<string | undefined> => {
    const instance = (await t.daemon.snapshot()).info.instance;
    for await (const m of await nc.requestMany('$SRV.PING.hbagg', undefined, { strategy: 'timer', maxWait: 300 })) {
      const p = json<Info>(m);
      if (p.metadata.instance === instance) return p.id;
    }
    return undefined;
  };

  const start = async (env: Record<string, string> = {}) => {
    d = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, env: { HBAGG_NODE_ID: 'svc-node', ...env } });
    await waitFor(() => serviceId(d!).then(Boolean), { message: 'service discoverable' });
    return d;
  };

  it('answers $SRV.PING, $SRV.INFO.hbagg and $SRV.STATS.hbagg with the documented metadata and per-endpoint counters', async () => {
    const t = await start({ HBAGG_HTTP_TOKEN: 'tok-1' });
    const info = json<Info>(await nc.request('$SRV.INFO.hbagg', undefined, { timeout: 2000 }));
    expect(info).toMatchObject({ type: 'io.nats.micro.v1.info_response', name: 'hbagg', version: VERSION });
    expect(info.metadata).toEqual({
      node: 'svc-node',
      subject_prefix: t.prefix,
      instance: (await t.daemon.snapshot()).info.instance,
      http: t.base.replace('http://', ''),
    });
    expect(info.endpoints).toEqual([
      { name: 'workers', subject: 'hbagg.svc-node.workers', queue_group: 'q' },
      { name: 'status', subject: 'hbagg.svc-node.status', queue_group: 'q' },
    ]);
    const ping = json<Info>(await nc.request(`$SRV.PING.hbagg.${info.id}`, undefined, { timeout: 2000 }));
    expect(ping).toMatchObject({ type: 'io.nats.micro.v1.ping_response', id: info.id, metadata: info.metadata });
    expect(json<Info>(await nc.request('$SRV.PING', undefined, { timeout: 2000 })).id).toBe(info.id);

    const h = headers();
    h.set('Authorization', 'Bearer tok-1');
    await nc.request('hbagg.svc-node.workers', undefined, { timeout: 2000, headers: h });
    await nc.request('hbagg.svc-node.workers', JSON.stringify({ token: 'tok-1' }), { timeout: 2000 });
    await nc.request('hbagg.svc-node.workers', undefined, { timeout: 2000 });
    await nc.request('hbagg.svc-node.status', undefined, { timeout: 2000 });

    const stats = json<Stats>(await nc.request('$SRV.STATS.hbagg', undefined, { timeout: 2000 }));
    expect(stats.type).toBe('io.nats.micro.v1.stats_response');
    expect(stats.id).toBe(info.id);
    expect(Date.parse(stats.started)).toBeGreaterThan(Date.now() - 60_000);
    const [workers, status] = stats.endpoints;
    expect(workers).toMatchObject({ name: 'workers', num_requests: 3, num_errors: 1 });
    expect(workers!.last_error).toMatch(/^401:authorization required/);
    expect(status).toMatchObject({ name: 'status', num_requests: 1, num_errors: 0, last_error: '' });
    expect(workers!.average_processing_time).toBe(Math.round(workers!.processing_time / 3));
  });

  it('workers: like GET /v1/workers, needs http.token (header or body field) and shows no meta values without http.expose_meta', async () => {
    const t = await start({ HBAGG_HTTP_TOKEN: 'tok-2' });
    nc.publish(`${t.prefix}.beat.w-meta`, beat('w-meta', 1, { meta: { role: 'secret-role' } }));
    await waitFor(() => t.daemon.workers().length === 1, { message: 'beat heard' });

    const refused = await nc.request('hbagg.svc-node.workers', JSON.stringify({ token: 'wrong' }), { timeout: 2000 });
    expect(refused.headers?.get('Nats-Service-Error-Code')).toBe('401');
    expect(refused.headers?.get('Nats-Service-Error')).toContain('does not match http.token');
    const missing = await nc.request('hbagg.svc-node.workers', undefined, { timeout: 2000 });
    expect(missing.headers?.get('Nats-Service-Error')).toContain('Authorization: Bearer <http.token>');

    const ok = json<{ node: string; workers: Record<string, unknown>[] }>(
      await nc.request('hbagg.svc-node.workers', JSON.stringify({ token: 'tok-2' }), { timeout: 2000 }),
    );
    expect(ok.node).toBe('svc-node');
    expect(ok.workers.map((w) => [w.worker, w.state])).toEqual([['w-meta', 'active']]);
    expect(JSON.stringify(ok)).not.toContain('secret-role');
  });

  it('workers: meta values with http.expose_meta, as GET /v1/workers shows them', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hbagg-meta-'));
    const file = path.join(dir, 'hbagg.json');
    writeFileSync(file, JSON.stringify({ http: { expose_meta: true } }));
    d = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, file, env: { HBAGG_NODE_ID: 'svc-node' } });
    const t = d;
    await waitFor(() => serviceId(t).then(Boolean), { message: 'service discoverable' });
    nc.publish(`${t.prefix}.beat.w-meta`, beat('w-meta', 1, { meta: { role: 'shown-role' } }));
    await waitFor(() => t.daemon.workers().length === 1, { message: 'beat heard' });
    const viaNats = json<{ workers: Record<string, unknown>[] }>(await nc.request('hbagg.svc-node.workers', undefined, { timeout: 2000 }));
    const viaHttp = (await (await fetch(`${t.base}/v1/workers`)).json()) as { workers: Record<string, unknown>[] };
    expect(viaNats.workers[0]?.meta).toEqual({ role: 'shown-role' });
    // `beats` counts since the last accepted ping, which may fall between the two reads.
    const steady = (ws: Record<string, unknown>[]) => ws.map(({ beats: _b, ...rest }) => rest);
    expect(steady(viaNats.workers)).toEqual(steady(viaHttp.workers));
  });

  it('status: pacer, last ping, workers by state and journal health; fleet marks a node whose pings fail', async () => {
    const t = await start();
    nc.publish(`${t.prefix}.beat.w1`, beat('w1', 1));
    await waitFor(async () => {
      const snap = await t.daemon.snapshot();
      return (snap.pings.accepted ?? 0) >= 1 && snap.workers.active === 1;
    });
    const s = json<StatusBody>(await nc.request('hbagg.svc-node.status', undefined, { timeout: 2000 }));
    expect(s).toMatchObject({
      node: 'svc-node',
      instance: (await t.daemon.snapshot()).info.instance,
      version: VERSION,
      subject_prefix: t.prefix,
      workers: { active: 1, draining: 0, stopped: 0, lost: 0 },
      journal: { ok: true, state: 'open' },
      twin: null,
      last_ping: { outcome: 'accepted' },
    });
    expect(['idle', 'pinging']).toContain(s.pacer.state);
    expect(s.pacer.interval_ms).toBeGreaterThan(0);

    const healthy = await runFleet({ nats: t.config.nats, waitMs: 500, json: false });
    expect(healthy.code).toBe(0);

    stub.respondWith({ status: 500, body: { error: 'down' } });
    nc.publish(`${t.prefix}.beat.w2`, beat('w2', 1));
    await waitFor(async () => ((await t.daemon.snapshot()).pings.failed ?? 0) >= 1, { message: 'a failed ping' });
    const r = await runFleet({ nats: t.config.nats, waitMs: 500, json: false });
    expect(r.code).toBe(1);
    const row = r.stdout.split('\n').find((l) => l.includes('svc-node')) ?? '';
    expect(row.startsWith('!')).toBe(true);
    expect(row).toContain('UNHEALTHY: last ping failed (HTTP 500');
    expect(r.report?.unhealthy).toBe(1);
  });

  /** Answers `<prefix>.probe` as another daemon, and asks it once as a newcomer does. */
  const otherDaemon = async (prefix: string, node: string, instance: string) => {
    const me = JSON.stringify({ node, instance, version: '0.9.0' });
    const sub = nc.subscribe(`${prefix}.probe`, {
      callback: (_e, m) => {
        m.respond(me);
      },
    });
    await nc.flush();
    for await (const _m of await nc.requestMany(`${prefix}.probe`, me, { strategy: 'timer', maxWait: 300 })) void _m;
    return sub;
  };

  it('a daemon that probes and leaves (a refused newcomer) is not taken for a twin', async () => {
    const t = await start();
    const newcomer = await otherDaemon(t.prefix, 'newcomer', 'n-1');
    setTimeout(() => newcomer.unsubscribe(), 500);
    await waitFor(() => t.logs.some((l) => String(l.msg).includes('left: no twin')), { timeoutMs: 10_000, message: 'the probe confirmed no twin' });
    expect(t.logs.some((l) => l.level === 'error')).toBe(false);
    expect((await fetch(`${t.base}/healthz`)).status).toBe(200);
  });

  it('a twin that appears after start (one that asked and stayed) is logged as an error, fails /healthz and shows in status', async () => {
    const t = await start();
    const twin = await otherDaemon(t.prefix, 'other-node', 'other-instance');
    try {
      await waitFor(() => t.logs.some((l) => l.level === 'error' && String(l.msg).includes('node "other-node"')), { timeoutMs: 10_000, message: 'error logged' });
      await waitFor(async () => (await fetch(`${t.base}/healthz`)).status === 503, { message: '/healthz fails' });
      const report = (await (await fetch(`${t.base}/healthz`)).json()) as { checks: Record<string, { status: string; error?: string }> };
      expect(report.checks['subject_space']?.status).toBe('fail');
      expect(report.checks['subject_space']?.error).toContain('HBAGG_SUBJECT_PREFIX=hb.<node>');
      const s = json<StatusBody>(await nc.request('hbagg.svc-node.status', undefined, { timeout: 2000 }));
      expect(s.twin).toMatchObject({ node: 'other-node', instance: 'other-instance' });
      const fleet = await runFleet({ nats: t.config.nats, waitMs: 500, json: true });
      expect(fleet.code).toBe(1);
      expect(fleet.report?.nodes[0]?.problems.join()).toContain('shares its beat subjects with node "other-node"');
    } finally {
      twin.unsubscribe();
    }
  });

  it('the guard asks again on its schedule: a twin is found, and cleared once it goes', async () => {
    const prefix = `t${Date.now().toString(36)}`;
    const logs: string[] = [];
    const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(line) });
    const conn = await natsClient(nats.url);
    const guard = new TwinGuard({ prefix, log, self: () => ({ node: 'me', instance: 'me-1', version: '1' }), recheckMs: 300, confirmMs: 200, windowMs: 150 });
    try {
      await guard.guardStart(conn);
      expect(guard.twin).toBeUndefined();
      const sub = nc.subscribe(`${prefix}.probe`, {
        callback: (_e, m) => {
          m.respond(JSON.stringify({ node: 'late', instance: 'late-1', version: '1' }));
        },
      });
      await nc.flush();
      await waitFor(() => guard.twin?.node === 'late', { message: 'twin found on schedule' });
      expect(logs.some((l) => l.includes('"level":50') && l.includes('node \\"late\\"'))).toBe(true);
      sub.unsubscribe();
      await nc.flush();
      await waitFor(() => guard.twin === undefined, { message: 'twin cleared' });
      expect(guard.healthCheck().run(new AbortController().signal)).toEqual({ subject: `${prefix}.probe` });
    } finally {
      guard.stop();
      await conn.close();
    }
  });

  it('is registered again after a NATS restart, and leaves discovery when the daemon stops', async () => {
    const t = await start();
    const id = (await serviceId(t))!;
    const ping = async () => json<Info>(await nc.request(`$SRV.PING.hbagg.${id}`, undefined, { timeout: 300 })).id;
    expect(await ping()).toBe(id);
    await nats.restart();
    await waitFor(() => ping().then((got) => got === id), { timeoutMs: 15_000, message: 'service answers after the restart' });
    await t.stop();
    d = undefined;
    await expect(ping()).rejects.toThrow();
  }, 30_000);
});
