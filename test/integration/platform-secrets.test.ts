/**
 * No part of the platform token, a password in the URL or a
 * secret query parameter reaches a log line or an error, even at trace level
 * and even when the platform echoes the request back.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlatformClient } from '../../src/daemon/platform-client.js';
import {
  natsClient,
  spawnHbagg,
  startNatsServer,
  startPlatformStub,
  startTestDaemon,
  waitFor,
  type NatsServerHandle,
} from '../../testing/index.js';

describe('secrets never logged', () => {
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

  it('logs no part of the token or the query secret at trace level while a platform echoing the request fails', async () => {
    const stub = await startPlatformStub();
    // A hostile or careless platform: its 500 quotes the request line and headers.
    stub.respondWith((req) => ({ status: 500, body: `cannot handle ${req.method} ${req.path} ${JSON.stringify(req.headers)}` }));
    const d = await startTestDaemon({
      natsUrl: nats.url,
      platformUrl: `${stub.url}?api_key=Qu3ry-S3cret`,
      env: { HBAGG_LOG_LEVEL: 'trace', HBAGG_PLATFORM_TOKEN: 'T0ken-S3cret', HBAGG_MIN_INTERVAL_MS: '100', HBAGG_MAX_INTERVAL_MS: '200' },
    });
    try {
      await stub.waitForRequests(3);
      await waitFor(() => d.logs.some((l) => l.msg === 'platform is not accepting pings; will retry with backoff'));
      const health = await (await fetch(`${d.base}/healthz`)).text();
      const all = JSON.stringify(d.logs) + health;
      expect(all).not.toContain('T0ken-S3cret');
      expect(all).not.toContain('Qu3ry-S3cret');
      expect(all).toContain(`${stub.url}?[redacted]`);
    } finally {
      await d.stop();
      await stub.close();
    }
  });

  it('keeps a token with a line break and a URL password out of the errors a failed request raises', async () => {
    const crlf = new PlatformClient({ url: 'http://127.0.0.1:9/p', token: 'abcdef\r\nghijkl', timeoutMs: 1000, userAgent: 't' });
    const r1 = await crlf.send('{}', 'k');
    expect(r1.outcome).toBe('failed');
    expect(r1.error).not.toMatch(/abcdef|ghijkl/);
    const userinfo = new PlatformClient({ url: 'http://ops:pa55word@127.0.0.1:9/p?api_key=Qu3ry', timeoutMs: 1000, userAgent: 't' });
    const r2 = await userinfo.send('{}', 'k');
    expect(r2.outcome).toBe('failed');
    expect(r2.error).not.toMatch(/pa55word|Qu3ry/);
    expect(r2.error).toContain('ECONNREFUSED');
  });

  it('check-config prints the platform URL without its query string', async () => {
    const child = spawnHbagg(['check-config'], { HBAGG_PLATFORM_URL: 'http://127.0.0.1:1/p?api_key=Qu3ry-S3cret' });
    expect(await child.exited).toBe(0);
    expect(child.out()).not.toContain('Qu3ry-S3cret');
    expect(JSON.parse(child.stdout()).platform.url).toBe('http://127.0.0.1:1/p?[redacted]');
  });
});
