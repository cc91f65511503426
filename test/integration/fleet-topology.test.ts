/**
 * Many nodes (README "Many nodes"): a hub and two leaf nats-servers from the
 * shipped deploy/nats configs, a real `hbagg run` per node, real workers, a
 * platform stub, and `hbagg fleet` against the hub; then one shared server,
 * where the shared-subject guard must refuse the second daemon.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeartbeatClient } from '../../src/client/index.js';
import type { FleetReport } from '../../src/fleet/index.js';
import {
  beat,
  natsClient,
  spawnHbagg,
  startLeafTopology,
  startNatsServer,
  startPlatformStub,
  startTestDaemon,
  waitFor,
  type HbaggProcess,
  type LeafTopology,
  type PlatformStub,
  type TestDaemon,
} from '../../testing/index.js';

interface PingBody {
  node: string;
  workers: { worker: string; state: string }[];
}

function daemonEnv(node: string, natsUrl: string, platformUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    HBAGG_NODE_ID: node,
    HBAGG_NATS_URL: natsUrl,
    HBAGG_PLATFORM_URL: platformUrl,
    HBAGG_HTTP_LISTEN: '127.0.0.1:0',
    HBAGG_STATE_DIR: mkdtempSync(path.join(tmpdir(), `hbagg-state-${node}-`)),
    HBAGG_MIN_INTERVAL_MS: '200',
    ...extra,
  };
}

async function fleet(args: string[]) {
  const child = spawnHbagg(['fleet', ...args]);
  const code = await child.exited;
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

/** How many hbagg services answer `$SRV.PING.hbagg` on `url` within 300 ms. */
async function pingCount(url: string): Promise<number> {
  const nc = await connect({ servers: url });
  try {
    let n = 0;
    for await (const _m of await nc.requestMany('$SRV.PING.hbagg', undefined, { strategy: 'timer', maxWait: 300 })) n++;
    return n;
  } catch {
    return 0;
  } finally {
    await nc.close();
  }
}

describe('two nodes on leaf nats-servers joined by a hub', () => {
  let topo: LeafTopology;
  let stub: PlatformStub;
  const daemons: HbaggProcess[] = [];
  const workers: HeartbeatClient[] = [];

  beforeAll(async () => {
    topo = await startLeafTopology(2);
    stub = await startPlatformStub();
  }, 30_000);
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.close().catch(() => undefined)));
    for (const d of daemons) d.proc.kill('SIGKILL');
    await Promise.all(daemons.map((d) => d.exited));
    await stub?.close();
    await topo?.stop();
  });

  const lastPing = (node: string) =>
    stub.accepted().map((r) => r.body as PingBody).filter((b) => b.node === node).at(-1);

  it('each daemon, on the default prefix, reports only its own node workers; fleet lists both; a killed daemon drops out', async () => {
    // Both on the default prefix `hb`: the leaves keep hb.> local, so the guard lets both start.
    for (const [i, node] of ['node-a', 'node-b'].entries()) {
      daemons.push(spawnHbagg(['run'], daemonEnv(node, topo.leaves[i]!.url, stub.url)));
    }
    await waitFor(() => pingCount(topo.hub.url).then((n) => n === 2), { timeoutMs: 20_000, message: 'both daemons discoverable from the hub' });
    const spec = [
      { leaf: 0, names: ['a-1', 'a-2', 'a-3'] },
      { leaf: 1, names: ['b-1', 'b-2'] },
    ];
    for (const s of spec) {
      for (const worker of s.names) {
        const w = new HeartbeatClient({ worker, servers: topo.leaves[s.leaf]!.url, intervalMs: 200 });
        workers.push(w);
        await w.start();
      }
    }
    const names = (node: string) => lastPing(node)?.workers.filter((w) => w.state === 'active').map((w) => w.worker).sort();
    await waitFor(() => names('node-a')?.length === 3 && names('node-b')?.length === 2, { timeoutMs: 10_000, message: 'pings of both nodes' });
    expect(names('node-a')).toEqual(['a-1', 'a-2', 'a-3']);
    expect(names('node-b')).toEqual(['b-1', 'b-2']);
    for (const d of daemons) expect(d.out()).not.toContain('refusing to run');

    const table = await fleet(['--nats', topo.hub.url, '--wait', '1500']);
    if (process.env.HBAGG_TEST_SHOW_FLEET) process.stderr.write(`\n--- hbagg fleet ---\n${table.stdout}${table.stderr}`);
    expect(table.code).toBe(0);
    const row = (node: string) => table.stdout.split('\n').find((l) => l.includes(` ${node} `)) ?? '';
    expect(row('node-a')).toMatch(/\s3\s+0\s+0\s+0\s/);
    expect(row('node-b')).toMatch(/\s2\s+0\s+0\s+0\s/);
    expect(table.stdout).toContain('2 nodes, 0 unhealthy');

    const json = await fleet(['--nats', topo.hub.url, '--wait', '1500', '--json']);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as FleetReport;
    expect(report.nodes.map((n) => [n.node, n.workers?.active, n.healthy])).toEqual([
      ['node-a', 3, true],
      ['node-b', 2, true],
    ]);
    expect(report.nodes.every((n) => n.last_ping?.outcome === 'accepted')).toBe(true);

    daemons[1]!.proc.kill('SIGKILL');
    await daemons[1]!.exited;
    const after = await fleet(['--nats', topo.hub.url, '--wait', '1500', '--json']);
    expect(after.code).toBe(0);
    expect((JSON.parse(after.stdout) as FleetReport).nodes.map((n) => n.node)).toEqual(['node-a']);
  }, 60_000);
});

describe('two nodes on one shared nats-server', () => {
  let stub: PlatformStub;
  beforeAll(async () => {
    stub = await startPlatformStub();
  });
  afterAll(async () => {
    await stub?.close();
  });

  it('with the default prefix, the second daemon refuses to start (exit 1), naming the other node and both fixes', async () => {
    const nats = await startNatsServer();
    const first = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, env: { HBAGG_NODE_ID: 'node-a', HBAGG_SUBJECT_PREFIX: 'hb' } });
    try {
      const second = spawnHbagg(['run'], daemonEnv('node-b', nats.url, stub.url));
      const code = await second.exited;
      expect(code).toBe(1);
      const err = second.stderr();
      expect(err).toContain('refusing to run: another hbagg answers on hb.probe: node "node-a"');
      expect(err).toContain('HBAGG_SUBJECT_PREFIX=hb.<node>');
      expect(err).toContain('local NATS leaf node whose remote does not share hb.>');
      // The first one goes on, and counts the refused one's probe as no twin (it left).
      expect(first.daemon.state).toBe('running');
      await waitFor(() => first.logs.some((l) => String(l.msg).includes('left: no twin')), { timeoutMs: 10_000, message: 'the newcomer not taken for a twin' });
      expect((await fetch(`${first.base}/healthz`)).status).toBe(200);
      // Refused means never announced: not even the node's first (empty) ping.
      expect(stub.requests.filter((r) => (r.body as PingBody).node === 'node-b')).toEqual([]);
    } finally {
      await first.stop();
      await nats.stop();
    }
  }, 30_000);

  it('a NATS user not allowed to use the probe subject still starts, and hears beats', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hbagg-perm-'));
    const conf = path.join(dir, 'perm.conf');
    writeFileSync(conf, 'authorization { users = [ { user: "u", password: "p", permissions: { publish: { deny: ["hb.probe"] }, subscribe: { deny: ["hb.probe"] } } } ] }\n');
    const nats = await startNatsServer({ args: ['-c', conf] });
    try {
      const d = await startTestDaemon({
        natsUrl: nats.url,
        platformUrl: stub.url,
        env: { HBAGG_NODE_ID: 'node-p', HBAGG_SUBJECT_PREFIX: 'hb', HBAGG_NATS_USER: 'u', HBAGG_NATS_PASS: 'p' },
      });
      try {
        const nc = await connect({ servers: nats.url, user: 'u', pass: 'p' });
        nc.publish('hb.beat.w-p', beat('w-p', 1));
        await waitFor(() => d.daemon.workers().length === 1, { message: 'beat heard' });
        await nc.close();
      } finally {
        await d.stop();
      }
    } finally {
      await nats.stop();
    }
  }, 30_000);

  it('with per-node prefixes, both run and each hears only its own workers', async () => {
    const nats = await startNatsServer();
    const ds: TestDaemon[] = [];
    const nc = await natsClient(nats.url);
    try {
      for (const node of ['node-a', 'node-b']) {
        ds.push(await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, env: { HBAGG_NODE_ID: node, HBAGG_SUBJECT_PREFIX: `hb.${node}` } }));
      }
      nc.publish('hb.node-a.beat.w-a', beat('w-a', 1));
      nc.publish('hb.node-b.beat.w-b', beat('w-b', 1));
      nc.publish('hb.node-b.beat.w-b2', beat('w-b2', 1));
      const seen = (d: TestDaemon) => d.daemon.workers().map((w) => w.worker).sort();
      await waitFor(() => seen(ds[0]!).length === 1 && seen(ds[1]!).length === 2, { message: 'beats heard' });
      expect(seen(ds[0]!)).toEqual(['w-a']);
      expect(seen(ds[1]!)).toEqual(['w-b', 'w-b2']);
      for (const d of ds) {
        const health = (await (await fetch(`${d.base}/healthz`)).json()) as { checks: Record<string, { status: string }> };
        expect(health.checks['subject_space']?.status).toBe('ok');
      }
    } finally {
      await nc.close();
      await Promise.all(ds.map((d) => d.stop()));
      await nats.stop();
    }
  }, 30_000);
});
