/**
 * The state dir deleted under a running daemon: the
 * journal's descriptor then points at an unlinked file. A Leave must still be
 * acknowledged only once a restart can find it, and /healthz must say so
 * until the journal and its lock are back at their path.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOURNAL_FILE } from '../../src/daemon/journal/journal.js';
import { LOCK_FILE } from '../../src/daemon/journal/state-lock.js';
import type { LeaveReply } from '../../src/protocol/schemas.js';
import {
  freePort,
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

const beat = (worker: string, seq: number) => JSON.stringify({ v: 1, worker, instance: 'i1', seq, interval_ms: 1000 });
const leave = (worker: string) => JSON.stringify({ v: 1, worker, instance: 'i1', seq: 2, phase: 'stopped', reason: 'test' });

describe('state dir deleted while running', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let stub: PlatformStub;

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await natsClient(nats.url);
    stub = await startPlatformStub();
    // The platform takes nothing: every terminal state stays owed, so it must be in the journal.
    stub.respondWith({ status: 503 });
  });

  afterAll(async () => {
    await nc?.close();
    await stub?.close();
    await nats?.stop();
  });

  it('acknowledges a Leave only once a restart on the same dir will find it', async () => {
    const prefix = uniquePrefix();
    const stateDir = mkdtempSync(path.join(tmpdir(), 'hbagg-vanish-'));
    const port = await freePort();
    const env = {
      HBAGG_NODE_ID: 'vanish-node',
      HBAGG_NATS_URL: nats.url,
      HBAGG_PLATFORM_URL: stub.url,
      HBAGG_HTTP_LISTEN: `127.0.0.1:${port}`,
      HBAGG_STATE_DIR: stateDir,
      HBAGG_SUBJECT_PREFIX: prefix,
      HBAGG_LOG_LEVEL: 'info',
    };
    const first = spawnHbagg(['run'], env);
    try {
      await waitFor(() => first.out().includes('"msg":"nats ready"'), { timeoutMs: 20_000, message: 'daemon ready' });
      nc.publish(`${prefix}.beat.w1`, beat('w1', 1));
      await waitFor(async () => {
        const r = await fetch(`http://127.0.0.1:${port}/v1/workers`);
        return ((await r.json()) as { workers: { worker: string }[] }).workers.some((w) => w.worker === 'w1');
      }, { message: 'w1 known' });

      rmSync(stateDir, { recursive: true, force: true });
      const reply = (await nc.request(`${prefix}.leave.w1`, leave('w1'), { timeout: 5_000 })).json<LeaveReply>();
      expect(reply).toMatchObject({ ok: true, state: 'stopped' });

      // A crash right after the acknowledgement: only what is at the path counts.
      first.proc.kill('SIGKILL');
      await first.exited;
      expect(existsSync(path.join(stateDir, JOURNAL_FILE))).toBe(true);

      const second = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, env: { ...env, HBAGG_HTTP_LISTEN: '127.0.0.1:0' } });
      try {
        const owed = second.daemon.workers().map((e) => `${e.worker}/${e.instance}:${e.state}`);
        expect(owed).toContain('w1/i1:stopped');
        expect(second.logs.find((l) => l.msg === 'state journal open')).toMatchObject({ restored: 1 });
      } finally {
        await second.stop();
      }
      expect(first.out()).toContain('state journal detached from its path');
    } finally {
      first.proc.kill('SIGKILL');
    }
  }, 60_000);

  it('fails state_dir while the state dir is gone and passes once the journal and its lock are back', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hbagg-vanish-'));
    const d = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, env: { HBAGG_STATE_DIR: dir } });
    try {
      const stateDirCheck = async () => {
        const r = await fetch(`${d.base}/healthz`);
        return ((await r.json()) as { checks: Record<string, { status: string; error?: string }> }).checks.state_dir;
      };
      await waitFor(async () => (await stateDirCheck())?.status === 'ok', { message: 'state_dir ok at start' });
      rmSync(dir, { recursive: true, force: true });
      const failed = await waitFor(async () => {
        const c = await stateDirCheck();
        return c?.status === 'fail' ? c : undefined;
      }, { timeoutMs: 10_000, message: 'state_dir failing' });
      expect(failed.error).toMatch(/does not exist|detached/);
      await waitFor(async () => (await stateDirCheck())?.status === 'ok', { timeoutMs: 10_000, message: 'state_dir ok again' });
      const lock = JSON.parse(readFileSync(path.join(dir, LOCK_FILE), 'utf8')) as { pid: number; instance: string };
      expect(lock).toMatchObject({ pid: process.pid, instance: (await d.daemon.snapshot()).info.instance });
      expect(existsSync(path.join(dir, JOURNAL_FILE))).toBe(true);
      expect(d.logs.some((l) => String(l.msg).startsWith('state journal detached from its path') && l.level === 'error')).toBe(true);
    } finally {
      await d.stop();
    }
  }, 30_000);
});
