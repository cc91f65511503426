import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import {
  canConnect,
  startNatsServer,
  startPlatformStub,
  waitFor,
  type NatsServerHandle,
  type PlatformStub,
} from '../../testing/index.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function natsServer(opts?: { jetstream?: boolean }): Promise<NatsServerHandle> {
  const server = await startNatsServer(opts);
  cleanups.push(() => server.stop());
  return server;
}

async function client(url: string, extra: Record<string, unknown> = {}): Promise<NatsConnection> {
  const nc = await connect({ servers: url, ...extra });
  cleanups.push(() => nc.close());
  return nc;
}

async function platformStub(): Promise<PlatformStub> {
  const stub = await startPlatformStub();
  cleanups.push(() => stub.close());
  return stub;
}

/** Subscribes, publishes, and waits until the message comes back. */
async function roundTrip(nc: NatsConnection, payload: string): Promise<void> {
  const subject = `test.helpers.${randomUUID()}`;
  const received: string[] = [];
  nc.subscribe(subject, {
    callback: (_err, msg) => {
      received.push(msg.string());
    },
  });
  await nc.flush();
  nc.publish(subject, payload);
  await waitFor(() => received.includes(payload), { message: `message on ${subject}` });
}

describe('startNatsServer', () => {
  it('starts a server that a client connects to, publishes to and receives from', async () => {
    const server = await natsServer();
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    const nc = await client(server.url);
    await roundTrip(nc, 'hello');
  });

  it('refuses connections after kill() and accepts them again after restart() on the same port', async () => {
    const server = await natsServer();
    const port = server.port;
    await server.kill();
    expect(await canConnect(port)).toBe(false);

    await server.restart();
    expect(server.port).toBe(port);
    expect(await canConnect(port)).toBe(true);
    const nc = await client(server.url);
    await roundTrip(nc, 'after restart');
  });

  it('lets a reconnecting client resume after kill() and restart()', async () => {
    const server = await natsServer();
    const nc = await client(server.url, { reconnectTimeWait: 50, maxReconnectAttempts: -1 });
    await roundTrip(nc, 'before');

    await server.kill();
    await server.restart();
    await waitFor(() => !nc.isClosed() && nc.info !== undefined, { message: 'client still open' });
    await waitFor(async () => {
      await roundTrip(nc, 'after');
      return true;
    }, { timeoutMs: 10_000, message: 'round trip after the restart' });
  });

  it('stops gracefully and treats a second stop() as a no-op', async () => {
    const server = await natsServer();
    await server.stop();
    expect(await canConnect(server.port)).toBe(false);
    await server.stop();
    await server.kill();
  });

  it('enables JetStream when asked', async () => {
    const server = await natsServer({ jetstream: true });
    const nc = await client(server.url);
    const info = (await nc.request('$JS.API.INFO', '', { timeout: 5000 })).json<Record<string, unknown>>();
    expect(info['type']).toBe('io.nats.jetstream.api.v1.account_info_response');
  });

  it('fails with the server output when the port is taken', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => blocker.close(resolve)));
    const port = (blocker.address() as net.AddressInfo).port;

    await expect(startNatsServer({ port })).rejects.toThrow(/exited .*before accepting connections[\s\S]*address already in use/);
  });
});

describe('startPlatformStub', () => {
  it('records the JSON body and headers of a POST and answers 200 {} by default', async () => {
    const stub = await platformStub();
    expect(stub.url).toBe(`http://127.0.0.1:${stub.port}/v1/heartbeats`);

    const res = await fetch(stub.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'node-a:d1:1', authorization: 'Bearer t0k' },
      body: JSON.stringify({ v: 1, node: 'node-a', workers: [] }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({});

    const [ping] = await stub.waitForRequests(1);
    expect(ping).toMatchObject({
      method: 'POST',
      path: '/v1/heartbeats',
      status: 200,
      body: { v: 1, node: 'node-a', workers: [] },
    });
    expect(ping?.headers['idempotency-key']).toBe('node-a:d1:1');
    expect(ping?.headers['authorization']).toBe('Bearer t0k');
    expect(ping?.receivedAt).toBeGreaterThan(Date.now() - 10_000);
    expect(stub.accepted()).toHaveLength(1);
  });

  it('answers a programmed 503 with Retry-After, then accepts the next ping', async () => {
    const stub = await platformStub();
    stub.respondWith((_req, n) =>
      n === 1 ? { status: 503, headers: { 'retry-after': '2' }, body: { error: 'busy' } } : { status: 200, body: { next_interval_ms: 500 } },
    );

    const first = await fetch(stub.url, { method: 'POST', body: '{"seq":1}' });
    expect(first.status).toBe(503);
    expect(first.headers.get('retry-after')).toBe('2');
    expect(await first.json()).toEqual({ error: 'busy' });

    const second = await fetch(stub.url, { method: 'POST', body: 'not json' });
    expect(await second.json()).toEqual({ next_interval_ms: 500 });

    await stub.waitForRequests(2);
    expect(stub.requests.map((r) => [r.status, r.body])).toEqual([
      [503, { seq: 1 }],
      [200, 'not json'],
    ]);
    expect(stub.accepted().map((r) => r.body)).toEqual(['not json']);

    stub.clear();
    expect(stub.requests).toHaveLength(0);
  });

  it('holds a hanging request until close() releases it', async () => {
    const stub = await platformStub();
    stub.respondWith({ hang: true });

    const pending = fetch(stub.url, { method: 'POST', body: '{}' });
    const outcome = pending.then(
      () => 'answered',
      () => 'failed',
    );
    const [ping] = await stub.waitForRequests(1);
    expect(ping?.hung).toBe(true);
    expect(ping?.status).toBeUndefined();

    await stub.close();
    expect(await outcome).toBe('failed');
    expect(stub.accepted()).toHaveLength(0);
  });
});

describe('waitFor', () => {
  it('returns the first truthy value', async () => {
    let calls = 0;
    const value = await waitFor(() => (++calls >= 3 ? { calls } : undefined), { intervalMs: 1 });
    expect(value).toEqual({ calls: 3 });
  });

  it('names the message and the last value when the deadline passes', async () => {
    await expect(waitFor(() => ({ ready: false }).ready && 1, { timeoutMs: 50, message: 'never ready' })).rejects.toThrow(
      /timed out after 50 ms: never ready; last value: false/,
    );
  });
});
