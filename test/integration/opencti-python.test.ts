/**
 * examples/python/connector_worker.py against a real daemon (platform.kind
 * "opencti"), a real nats-server and the OpenCTI stub, over both transports.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, startNatsServer, startTestDaemon, waitFor, type NatsServerHandle } from '../../testing/index.js';
import { startOpenCtiStub } from '../../testing/opencti-stub.js';

const WORKER = fileURLToPath(new URL('../../examples/python/connector_worker.py', import.meta.url));
const PERIOD = 2000;

describe('the Python connector worker (examples/python/connector_worker.py)', () => {
  let nats: NatsServerHandle;

  beforeAll(async () => {
    nats = await startNatsServer();
  });

  afterAll(async () => {
    await nats?.stop();
  });

  for (const transport of ['http', 'nats'] as const) {
    it(`beats over ${transport} with its connector id and state; hbagg pings OpenCTI with it until SIGTERM`, async () => {
      const stub = await startOpenCtiStub({ inactiveAfterMs: 6000 });
      const id = transport === 'http' ? '11111111-2222-4333-8444-555555555555' : '11111111-2222-4333-8444-666666666666';
      stub.register(id, { state: '{"last_run":1}' });
      const file = path.join(mkdtempSync(path.join(tmpdir(), 'hbagg-opencti-py-')), 'config.json');
      writeFileSync(file, JSON.stringify({ platform: { kind: 'opencti', timeout_ms: 800, opencti: { ping_every_ms: PERIOD, inactive_after_ms: 6000 } } }));
      const d = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, file });
      const target = transport === 'http' ? ['--url', d.base] : ['--nats', nats.url, '--prefix', d.prefix];
      const proc = spawn('python3', [WORKER, '--connector-id', id, '--worker', `py-${transport}`, '--interval-ms', '300', '--run-every-s', '1', ...target], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
      try {
        await waitFor(() => stub.pingsOf(id).some((p) => p.state?.includes('"runs"')), {
          timeoutMs: 15_000, message: `a ping carrying the worker's state; stderr: ${stderr}`,
        });
        expect(stub.pingsOf(id).every((p) => typeof p.state === 'string')).toBe(true);
        expect(stub.connectors.get(id)?.connector_info).toMatchObject({ run_and_terminate: false, queue_threshold: 500 });
        proc.kill('SIGTERM');
        expect(await exited, stderr).toBe(0);
        expect(stderr).toContain('leave stopped: acknowledged, state stopped');
        const stoppedAt = Date.now();
        await sleep(PERIOD + 500);
        expect(stub.pingsOf(id).filter((p) => p.at > stoppedAt + 100)).toEqual([]);
        expect(stub.validationFailures()).toEqual([]);
      } finally {
        proc.kill('SIGKILL');
        await d.stop();
        await stub.close();
      }
    }, 40_000);
  }
});
