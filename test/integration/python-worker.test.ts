import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { createLogger } from '../../src/daemon/logger.js';
import { startReceiver, type Receiver, type ReceiverEvent } from '../../src/receiver/index.js';
import { startNatsServer, waitFor, type NatsServerHandle } from '../../testing/index.js';

// python3 is part of the machine image this project runs on (and CI's): no skip.
const WORKER = fileURLToPath(new URL('../../examples/python/worker_http.py', import.meta.url));

describe('the stdlib Python worker over HTTP (examples/python/worker_http.py)', () => {
  let nats: NatsServerHandle;
  let receiver: Receiver;
  let daemon: Daemon;
  let stateDir: string;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    nats = await startNatsServer();
    receiver = await startReceiver();
    stateDir = mkdtempSync(path.join(tmpdir(), 'hbagg-py-'));
    const cfg = loadConfig({
      env: {
        HBAGG_NODE_ID: 'py-node',
        HBAGG_NATS_URL: nats.url,
        HBAGG_SUBJECT_PREFIX: 'pytest',
        HBAGG_PLATFORM_URL: `${receiver.url}/v1/heartbeats`,
        HBAGG_HTTP_LISTEN: '127.0.0.1:0',
        HBAGG_STATE_DIR: stateDir,
      },
    });
    daemon = new Daemon(cfg, createLogger('silent'));
    await daemon.start();
  });

  afterAll(async () => {
    child?.kill('SIGKILL');
    await daemon?.stop();
    await receiver?.close();
    await nats?.stop();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  const workerEvents = (change: string) =>
    receiver.events.filter((e): e is Extract<ReceiverEvent, { type: 'worker' }> => e.type === 'worker' && e.worker === 'py-http-1' && e.change === change);

  it('beats, then on SIGTERM announces draining and stopped, and exits 0', async () => {
    const url = `http://127.0.0.1:${(await daemon.snapshot()).http?.port}`;
    const proc = spawn('python3', [WORKER, '--url', url, '--worker', 'py-http-1', '--interval-ms', '200', '--drain-timeout-ms', '3000'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child = proc;
    let stderr = '';
    proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));

    await waitFor(() => workerEvents('appeared').length === 1, { timeoutMs: 10_000, message: `py-http-1 appeared; stderr: ${stderr}` });
    await waitFor(async () => (await daemon.snapshot()).beatsAccepted >= 3, {
      timeoutMs: 10_000,
      message: 'three beats accepted',
    });
    const entry = daemon.workers().find((w) => w.worker === 'py-http-1');
    expect(entry).toMatchObject({ state: 'active', interval_ms: 200, meta: { lang: 'python', transport: 'http' } });

    proc.kill('SIGTERM');
    expect(await exited, stderr).toBe(0);
    await waitFor(() => workerEvents('stopped').length === 1, { timeoutMs: 5_000, message: `py-http-1 stopped; stderr: ${stderr}` });
    expect(workerEvents('stopped')).toEqual([expect.objectContaining({ reason: 'SIGTERM' })]);
    // With no task in flight, draining and stopped can share one ping: the platform may see only stopped.
    for (const e of workerEvents('draining')) expect(e.reason).toBe('SIGTERM');
    const leaves = (await daemon.snapshot()).leaves;
    expect(leaves.applied).toEqual({ draining: 1, stopped: 1 });
    expect(stderr).toContain('leave draining: acknowledged, state draining');
    expect(stderr).toContain('leave stopped: acknowledged, state stopped');

    // Every message it built passed the daemon's validation (the same rules as schemas/*.json).
    const rejected = Object.values((await daemon.snapshot()).beatsRejected).reduce((n, v) => n + v, 0);
    expect(rejected).toBe(0);
  });
});
