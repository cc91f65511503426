/**
 * Security basics: secrets never reach the logs (pino redaction, plus a
 * platform that echoes our token back), HTTP binds to loopback by default,
 * and the NATS auth options of the config (user/password, token, creds file,
 * TLS CA) are passed on and work against a real nats-server.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { natsConnectOptions } from '../../src/daemon/nats-ingest.js';
import type { Ping } from '../../src/protocol/schemas.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { createLogger } from '../../src/daemon/logger.js';
import {
  freePort,
  startNatsServer,
  startPlatformStub,
  startTestDaemon,
  waitFor,
  type NatsServerHandle,
} from '../../testing/index.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures');
const secret = (what: string) => `${what}-${randomBytes(12).toString('hex')}`;

describe('security basics', () => {
  it('never logs the platform token, the http token or the nats password, whatever happens', async () => {
    const platformToken = secret('PLATFORM');
    const httpToken = secret('HTTP');
    const natsPass = secret('NATSPASS');
    const nats = await startNatsServer({ args: ['--user', 'hbagg', '--pass', natsPass] });
    const stub = await startPlatformStub();
    // A careless platform: its 401 and 500 bodies echo the authorization header back.
    stub.respondWith((req, n) =>
      n <= 2 ? { status: n === 1 ? 401 : 500, body: `denied: ${String(req.headers.authorization)}` } : { status: 200, body: {} },
    );
    const d = await startTestDaemon({
      natsUrl: nats.url,
      platformUrl: stub.url,
      env: {
        HBAGG_PLATFORM_TOKEN: platformToken,
        HBAGG_HTTP_TOKEN: httpToken,
        HBAGG_NATS_USER: 'hbagg',
        HBAGG_NATS_PASS: natsPass,
        HBAGG_MIN_INTERVAL_MS: '100',
        HBAGG_MAX_INTERVAL_MS: '400',
        HBAGG_LOG_LEVEL: 'trace',
      },
    });
    try {
      // It connected with the password: ready, and beats from an authorized client arrive.
      expect((await fetch(`${d.base}/readyz`)).status).toBe(200);
      const nc = await connect({ servers: nats.url, user: 'hbagg', pass: natsPass });
      nc.publish(`${d.prefix}.beat.w1`, JSON.stringify({ v: 1, worker: 'w1', instance: 'a', seq: 1, interval_ms: 1000 }));
      await nc.request(`${d.prefix}.leave.w1`, JSON.stringify({ v: 1, worker: 'w1', instance: 'a', seq: 2, phase: 'stopped' }), { timeout: 3000 });
      await nc.close();
      await waitFor(() => stub.accepted().some((r) => (r.body as Ping).workers.some((w) => w.worker === 'w1')), { message: 'ping accepted after the echoes' });
      expect(stub.requests[0]!.headers.authorization).toBe(`Bearer ${platformToken}`);

      // HTTP with the right token, a wrong one, and a bad body sent with the right one.
      const post = (auth: string, body: string) =>
        fetch(`${d.base}/v1/beat`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: auth }, body });
      expect((await post(`Bearer ${httpToken}`, JSON.stringify({ v: 1, worker: 'w2', instance: 'a', seq: 1, interval_ms: 1000 }))).status).toBe(202);
      expect((await post(`Bearer ${httpToken}x`, '{}')).status).toBe(401);
      expect((await post(`Bearer ${httpToken}`, `{"token":"${httpToken}"`)).status).toBe(400);
      // NATS goes away and comes back: reconnect logs.
      await nats.kill();
      await waitFor(async () => (await fetch(`${d.base}/readyz`)).status === 503);
      await nats.restart();
      await waitFor(async () => (await fetch(`${d.base}/readyz`)).status === 200, { timeoutMs: 10_000 });
      // Whoever logs a whole config, request or header object later, redaction holds by path.
      d.log.info({ config: d.config }, 'config dump');
      d.log.info({ nats: d.config.nats, platform: d.config.platform, http: d.config.http }, 'sections');
      d.log.info({ req: { headers: { authorization: `Bearer ${httpToken}` } }, headers: { authorization: `Bearer ${platformToken}` } }, 'request');
      d.log.info({ daemon: { config: d.config }, password: natsPass }, 'nested config');
    } finally {
      await d.stop();
      await stub.close();
      await nats.stop();
    }
    const text = JSON.stringify(d.logs);
    expect(d.logs.length).toBeGreaterThan(20);
    expect(text).toContain('[redacted]');
    const leaks = [platformToken, httpToken, natsPass].filter((s) => text.includes(s));
    expect(leaks).toEqual([]);
    // The echoes were logged, scrubbed.
    expect(d.logs.some((l) => String(l.error ?? '').includes('denied: Bearer [redacted]'))).toBe(true);
    console.info(`secrets: ${d.logs.length} log lines at trace level, ${text.length} bytes, 0 of 3 secrets found`);
  }, 40_000);

  it('binds its HTTP interface to loopback by default', async () => {
    const cfg = loadConfig({ env: { HBAGG_PLATFORM_URL: 'http://127.0.0.1:1/p' } });
    expect(cfg.http.listen).toBe('127.0.0.1:9470');
    expect(cfg.http.host).toBe('127.0.0.1');
    const nats = await startNatsServer();
    const port = await freePort();
    const d = new Daemon(
      { ...cfg, nats: { ...cfg.nats, servers: [nats.url] }, http: { ...cfg.http, port }, stateDir: path.join(os.tmpdir(), `hbagg-sec-${randomBytes(4).toString('hex')}`) },
      createLogger('silent'),
    );
    try {
      await d.start();
      expect((await d.snapshot()).http?.address).toBe('127.0.0.1');
      expect((await fetch(`http://127.0.0.1:${port}/livez`)).status).toBe(200);
      // Another address of this host does not answer.
      const external = Object.values(os.networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal);
      if (external) {
        const refused = await new Promise<boolean>((resolve) => {
          const s = net.connect({ host: external.address, port });
          s.once('connect', () => (s.destroy(), resolve(false)));
          s.once('error', () => resolve(true));
        });
        expect(refused).toBe(true);
      }
    } finally {
      await d.stop();
      await nats.stop();
    }
  });

  it('connects with a nats token, and keeps retrying a server that refuses its credentials until one accepts them', async () => {
    const token = secret('NATSTOKEN');
    const good = await startNatsServer({ args: ['--auth', token] });
    const stub = await startPlatformStub();
    try {
      const d = await startTestDaemon({ natsUrl: good.url, platformUrl: stub.url, env: { HBAGG_NATS_TOKEN: token } });
      expect((await d.daemon.snapshot()).nats.ready).toBe(true);
      await d.stop();
      expect(JSON.stringify(d.logs)).not.toContain(token);
    } finally {
      await good.stop();
    }

    // A server that wants another password: refused, not ready, retried; a server with the right one: ready.
    const pass = secret('RIGHT');
    const port = await freePort();
    let wrong: NatsServerHandle | undefined = await startNatsServer({ port, args: ['--user', 'hbagg', '--pass', secret('OTHER')] });
    const cfg = loadConfig({
      env: {
        HBAGG_PLATFORM_URL: stub.url, HBAGG_NATS_URL: wrong.url, HBAGG_NATS_USER: 'hbagg', HBAGG_NATS_PASS: pass,
        HBAGG_HTTP_LISTEN: '127.0.0.1:0', HBAGG_STATE_DIR: path.join(os.tmpdir(), `hbagg-sec-${randomBytes(4).toString('hex')}`),
      },
    });
    const lines: string[] = [];
    const d = new Daemon(cfg, createLogger('info', { write: (s: string) => void lines.push(s) }));
    let right: NatsServerHandle | undefined;
    try {
      await d.start();
      await waitFor(() => lines.filter((l) => l.includes('nats connection refused; retrying')).length >= 2, { timeoutMs: 10_000 });
      const base = `http://127.0.0.1:${(await d.snapshot()).http!.port}`;
      expect((await fetch(`${base}/readyz`)).status).toBe(503);
      await wrong.stop();
      wrong = undefined;
      right = await startNatsServer({ port, args: ['--user', 'hbagg', '--pass', pass] });
      await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { timeoutMs: 15_000, message: 'ready once the server accepts' });
    } finally {
      await d.stop();
      await wrong?.stop();
      await right?.stop();
      await stub.close();
    }
    expect(lines.join('')).not.toContain(pass);
  }, 40_000);

  it('connects over TLS with the CA file of the config', async () => {
    const tls = path.join(FIXTURES, 'tls');
    const nats = await startNatsServer({
      args: ['--tls', '--tlscert', path.join(tls, 'server.pem'), '--tlskey', path.join(tls, 'server-key.pem')],
    });
    const stub = await startPlatformStub();
    try {
      const d = await startTestDaemon({
        natsUrl: `tls://127.0.0.1:${nats.port}`,
        platformUrl: stub.url,
        env: { HBAGG_NATS_TLS_CA: path.join(tls, 'ca.pem') },
      });
      try {
        expect((await d.daemon.snapshot()).nats.ready).toBe(true);
        expect((await d.daemon.snapshot()).nats.tls).toBe(true);
      } finally {
        await d.stop();
      }
    } finally {
      await stub.close();
      await nats.stop();
    }
  });

  it('passes every auth setting of the config to the NATS connection, the creds file included', async () => {
    const creds = path.join(FIXTURES, 'nats', 'test-user.creds');
    const base = { servers: ['nats://127.0.0.1:4222'], subjectPrefix: 'hb', name: 'hbagg-x' };
    const withPass = natsConnectOptions({ ...base, user: 'u', pass: 'p' });
    expect(withPass).toMatchObject({ user: 'u', pass: 'p', maxReconnectAttempts: -1, waitOnFirstConnect: true });
    expect(natsConnectOptions({ ...base, token: 't' }).token).toBe('t');
    expect(natsConnectOptions({ ...base, tlsCaFile: '/etc/ca.pem' }).tls).toEqual({ caFile: '/etc/ca.pem' });
    const auth = natsConnectOptions({ ...base, credsFile: creds }).authenticator;
    expect(typeof auth).toBe('function');
    // The authenticator answers a server nonce with the file's JWT and a signature by its seed.
    const answer = (auth as (nonce?: string) => { jwt?: string; nkey?: string; sig?: string })('a-nonce');
    expect(answer.jwt).toBe('eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJ0ZXN0Ijp0cnVlfQ.c2ln');
    expect(answer.nkey).toBe('UCD67UVY6REVRFIA4WJFYJWLYVIM6QVCJ7MFP543JQJXUGDHMTBTPUNQ'); // the seed's public key
    expect(Buffer.from(answer.sig ?? '', 'base64')).toHaveLength(64); // an ed25519 signature
  });
});
