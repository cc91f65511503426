/**
 * Terminal states survive kill -9 (docs/PROTOCOL.md 2.7): a real `hbagg run`
 * process is killed while the platform refuses every ping and Leaves are in
 * flight; a new daemon on the same state dir delivers every `stopped` it had
 * acknowledged and every `lost` the platform had been shown.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOURNAL_FILE } from '../../src/daemon/journal/journal.js';
import { decodeLine } from '../../src/daemon/journal/journal-record.js';
import type { LeaveReply, Ping, PingWorker } from '../../src/protocol/schemas.js';
import {
  natsClient,
  spawnHbagg,
  startNatsServer,
  startPlatformStub,
  startTestDaemon,
  uniquePrefix,
  waitFor,
  type NatsServerHandle,
  type PlatformStub,
} from '../../testing/index.js';

const runCli = (env: Record<string, string>) => spawnHbagg(['run'], env);

/** The entries a journal file holds, replayed the way the daemon replays it. */
function journalEntries(dir: string): Map<string, PingWorker> {
  const live = new Map<string, PingWorker>();
  let text = '';
  try {
    text = readFileSync(path.join(dir, JOURNAL_FILE), 'utf8');
  } catch {
    return live;
  }
  for (const line of text.split('\n')) {
    const r = decodeLine(line);
    if (!r.ok) continue;
    // Terminal entries and live instances alike: all of them are restored by the next daemon.
    if (r.record.op === 'put' || r.record.op === 'live') live.set(`${r.record.e.worker}/${r.record.e.instance}`, r.record.e);
    else if (r.record.op === 'ack') live.delete(`${r.record.worker}/${r.record.instance}`);
  }
  return live;
}

const beat = (worker: string, instance: string, seq: number) =>
  JSON.stringify({ v: 1, worker, instance, seq, interval_ms: 100 });

describe('terminal states across kill -9', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let stub: PlatformStub;

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await natsClient(nats.url);
    stub = await startPlatformStub();
  });

  afterAll(async () => {
    await nc?.close();
    await stub?.close();
    await nats?.stop();
  });

  it('delivers after a restart every stopped it acknowledged and every lost it reported, and refuses a second daemon on its dir', async () => {
    const prefix = uniquePrefix();
    const stateDir = mkdtempSync(path.join(tmpdir(), 'hbagg-durable-'));
    const env = {
      HBAGG_NODE_ID: 'durable-node',
      HBAGG_NATS_URL: nats.url,
      HBAGG_PLATFORM_URL: stub.url,
      HBAGG_HTTP_LISTEN: '127.0.0.1:0',
      HBAGG_STATE_DIR: stateDir,
      HBAGG_SUBJECT_PREFIX: prefix,
      HBAGG_MIN_INTERVAL_MS: '100',
      HBAGG_MAX_INTERVAL_MS: '400',
      HBAGG_LOST_AFTER_MIN_MS: '500',
      HBAGG_LOG_LEVEL: 'info',
    };
    // The platform is down for the whole life of the first daemon: nothing it sends is accepted.
    stub.respondWith({ status: 503 });
    const first = runCli(env);
    try {
      await waitFor(() => first.out().includes('"msg":"nats ready"'), { timeoutMs: 20_000, message: 'first daemon ready' });

      // A second daemon on the same state dir: exit 1, naming the dir and the first one's pid.
      const second = runCli({ ...env, HBAGG_NODE_ID: 'intruder' });
      expect(await second.exited).toBe(1);
      expect(second.out()).toContain(stateDir);
      expect(second.out()).toContain(`pid ${first.proc.pid}`);
      expect(stub.requests.some((r) => (r.body as Ping).node === 'intruder')).toBe(false);

      // 40 workers go silent (lost), 20 restart (the old instance is lost as `restarted`), 150 will leave.
      const silent = Array.from({ length: 40 }, (_, i) => `silent-${i}`);
      const restarting = Array.from({ length: 20 }, (_, i) => `restart-${i}`);
      const leaving = Array.from({ length: 150 }, (_, i) => `leave-${i}`);
      for (const w of [...silent, ...restarting, ...leaving]) nc.publish(`${prefix}.beat.${w}`, beat(w, 'i1', 1));
      await nc.flush();
      for (const w of restarting) nc.publish(`${prefix}.beat.${w}`, beat(w, 'i2', 1));
      await nc.flush();

      // What the platform has been shown (though it refused it) must be durable by then.
      const shownLost = (): Set<string> =>
        new Set(
          stub.requests
            .flatMap((r) => (r.body as Ping).workers ?? [])
            .filter((w) => w.state === 'lost')
            .map((w) => `${w.worker}/${w.instance}`),
        );
      const expectedLost = [...silent.map((w) => `${w}/i1`), ...restarting.map((w) => `${w}/i1`)];
      await waitFor(() => expectedLost.every((k) => shownLost().has(k)), { timeoutMs: 10_000, message: 'lost reported' });
      const journaled = journalEntries(stateDir);
      expect(expectedLost.filter((k) => !journaled.has(k))).toEqual([]);

      // 150 Leaves in flight; kill -9 once half of them have been acknowledged.
      const acknowledged: string[] = [];
      let killedAt = -1;
      const requests = leaving.map((w) =>
        nc
          .request(`${prefix}.leave.${w}`, JSON.stringify({ v: 1, worker: w, instance: 'i1', seq: 2, phase: 'stopped', reason: 'test' }), {
            timeout: 3000,
          })
          .then((m) => {
            const reply = m.json<LeaveReply>();
            if (!reply.ok || killedAt >= 0) return;
            acknowledged.push(w);
            if (acknowledged.length === 75) {
              killedAt = acknowledged.length;
              first.proc.kill('SIGKILL');
            }
          })
          .catch(() => undefined),
      );
      await Promise.all(requests);
      expect(await first.exited).toBe(null);
      expect(first.proc.signalCode).toBe('SIGKILL');
      expect(acknowledged.length).toBeGreaterThanOrEqual(75);

      // A new daemon on the same dir while the platform is back.
      stub.clear();
      stub.respondWith({ status: 200, body: {} });
      const d2 = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, env: { ...env, HBAGG_LOG_LEVEL: 'info' } });
      try {
        const delivered = () =>
          new Map(
            stub
              .accepted()
              .flatMap((r) => (r.body as Ping).workers)
              .filter((w) => w.state === 'stopped' || w.state === 'lost')
              .map((w): [string, PingWorker] => [`${w.worker}/${w.instance}`, w]),
          );
        const owed = [...acknowledged.map((w) => `${w}/i1`), ...expectedLost];
        await waitFor(() => owed.every((k) => delivered().has(k)), { timeoutMs: 10_000, message: 'owed states delivered' });
        const got = delivered();
        for (const w of acknowledged) expect(got.get(`${w}/i1`)?.state).toBe('stopped');
        for (const w of restarting) expect(got.get(`${w}/i1`)).toMatchObject({ state: 'lost', reason: 'restarted' });
        for (const w of silent) expect(got.get(`${w}/i1`)).toMatchObject({ state: 'lost', reason: 'heartbeat_timeout' });
        console.info(
          `kill -9: ${acknowledged.length}/150 Leaves acknowledged before the kill, ${expectedLost.length} lost reported; ` +
            `after restart ${owed.filter((k) => got.has(k)).length}/${owed.length} delivered, ` +
            `${[...got.keys()].filter((k) => k.startsWith('leave-')).length} stopped in total (unacknowledged ones may be there too)`,
        );

        // The acknowledged Leaves stay in force: beats of a stopped instance are suppressed after the restart.
        const suppressed = async () =>
          (await d2.daemon.snapshot()).beatsRejected.suppressed;
        const before = await suppressed();
        for (const w of acknowledged.slice(0, 10)) nc.publish(`${prefix}.beat.${w}`, beat(w, 'i1', 99));
        await nc.flush();
        await waitFor(async () => (await suppressed()) - before === 10, { message: 'stopped instances suppressed' });

        // Once accepted, they are acknowledged in the journal too.
        // The restarted workers' new instances (restored live, silent since) must be reported lost and accepted too.
        await waitFor(() => journalEntries(stateDir).size === 0, { timeoutMs: 15_000, message: 'journal emptied by acceptances' });
      } finally {
        await d2.stop();
      }
      const d3 = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, env });
      try {
        expect(d3.logs.find((l) => l.msg === 'state journal open')?.restored).toBe(0);
      } finally {
        await d3.stop();
      }
    } finally {
      first.proc.kill('SIGKILL');
    }
  }, 60_000);

  it('compacts the journal on the cron schedule of its config', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hbagg-cron-'));
    const file = path.join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ housekeeping: { compact_cron: '* * * * * *' } }));
    stub.clear();
    stub.respondWith({ status: 200, body: {} });
    const d = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, file, env: { HBAGG_STATE_DIR: dir } });
    try {
      for (let i = 0; i < 20; i++) {
        const w = `c${i}`;
        nc.publish(`${d.prefix}.beat.${w}`, beat(w, 'i1', 1));
        await nc.request(`${d.prefix}.leave.${w}`, JSON.stringify({ v: 1, worker: w, instance: 'i1', seq: 2, phase: 'stopped' }), { timeout: 3000 });
      }
      // Every stopped accepted: 20 puts and 20 acks appended, nothing held...
      await waitFor(async () => {
        const { journal } = await d.daemon.snapshot();
        return journal.held === 0 && journal.records >= 40;
      }, { message: 'puts and acks journaled' });
      // ...and the next cron tick rewrites the file to the live set: no terminal entry, the 20 retirements (still in force).
      const onlyRetirements = () => {
        const lines = readFileSync(path.join(dir, JOURNAL_FILE), 'utf8').split('\n').filter(Boolean);
        return lines.length === 20 && lines.every((l) => decodeLine(l).ok && l.includes('"op":"retire"'));
      };
      await waitFor(async () => (await d.daemon.snapshot()).journal.compactions >= 1 && onlyRetirements(), {
        timeoutMs: 5000,
        message: 'compacted by cron',
      });
    } finally {
      await d.stop();
    }
  });
});
