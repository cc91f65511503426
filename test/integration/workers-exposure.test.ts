/**
 * What GET /v1/workers hands out, and to whom: instance ids
 * only with the token when one is set, meta values only with http.expose_meta,
 * and a warning when the interface listens beyond loopback without a token.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLoopbackHost } from '../../src/daemon/http/exposure.js';
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

type Workers = { workers: { worker: string; instance: string; meta?: Record<string, unknown> }[] };

describe('GET /v1/workers exposure', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let stub: PlatformStub;
  const daemons: TestDaemon[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await natsClient(nats.url);
    stub = await startPlatformStub();
  });
  afterAll(async () => {
    await Promise.all(daemons.map((d) => d.stop()));
    await nc?.close();
    await stub?.close();
    await nats?.stop();
  });

  async function daemonWith(env: Record<string, string>, config?: object): Promise<TestDaemon> {
    let file: string | undefined;
    if (config) {
      file = path.join(mkdtempSync(path.join(tmpdir(), 'hbagg-expose-')), 'config.json');
      writeFileSync(file, JSON.stringify(config));
    }
    const d = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, env, file });
    daemons.push(d);
    nc.publish(`${d.prefix}.beat.w1`, beat('w1', 1, { meta: { region: 'eu', api_key: 'k-123' } }));
    await waitFor(() => d.daemon.workers().length > 0, { message: 'w1 known' });
    return d;
  }

  it('needs the bearer token when http.token is set', async () => {
    const d = await daemonWith({ HBAGG_HTTP_TOKEN: 'local-secret' });
    const anonymous = await fetch(`${d.base}/v1/workers`);
    expect(anonymous.status).toBe(401);
    const body = await anonymous.text();
    expect(body).not.toContain('w1-i1');
    const wrong = await fetch(`${d.base}/v1/workers`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    const ok = await fetch(`${d.base}/v1/workers`, { headers: { authorization: 'Bearer local-secret' } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as Workers).workers[0]).toMatchObject({ worker: 'w1', instance: 'w1-i1' });
  });

  it('never shows meta values unless http.expose_meta is true', async () => {
    const hidden = await daemonWith({});
    const text = await (await fetch(`${hidden.base}/v1/workers`)).text();
    expect(text).not.toContain('k-123');
    expect((JSON.parse(text) as Workers).workers[0]).not.toHaveProperty('meta');
    // The platform still gets meta: only the local listing hides it.
    const shown = await daemonWith({}, { http: { expose_meta: true } });
    const workers = ((await (await fetch(`${shown.base}/v1/workers`)).json()) as Workers).workers;
    expect(workers[0]?.meta).toEqual({ region: 'eu', api_key: 'k-123' });
  });

  it('warns at start when http.listen is not loopback and no http.token is set, and not otherwise', async () => {
    const warning = (d: TestDaemon) => d.logs.some((l) => l.level === 'warn' && String(l.msg).includes('is not a loopback address'));
    const open = await daemonWith({ HBAGG_HTTP_LISTEN: '0.0.0.0:0' });
    expect(warning(open)).toBe(true);
    const guarded = await daemonWith({ HBAGG_HTTP_LISTEN: '0.0.0.0:0', HBAGG_HTTP_TOKEN: 't' });
    expect(warning(guarded)).toBe(false);
    const local = await daemonWith({});
    expect(warning(local)).toBe(false);
  });

  it('knows which listen hosts are loopback', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.5', 'example.com', '128.0.0.1']) expect(isLoopbackHost(h)).toBe(false);
  });
});
