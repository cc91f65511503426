/**
 * `hbagg demo --nats <url>` with nothing (or nothing NATS) at the URL: it
 * must end with a clear message instead of hanging,
 * and SIGTERM must end it promptly even while it is still starting.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, spawnHbagg, waitFor } from '../../testing/index.js';

const servers: net.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A TCP server that accepts and never says a word: a black hole where NATS should be. */
async function silentServer(): Promise<{ port: number; connections(): number }> {
  let connections = 0;
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    connections++;
    sockets.push(socket);
    socket.on('error', () => undefined);
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, connections: () => connections };
}

function demo(args: string[]) {
  return spawnHbagg(['demo', ...args], { NATS_SERVER_BIN: '/nonexistent/nats-server' });
}

async function exitWithin(child: ReturnType<typeof demo>, ms: number): Promise<number | null> {
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), ms);
  const code = await child.exited;
  clearTimeout(timer);
  if (child.proc.signalCode === 'SIGKILL') throw new Error(`hbagg demo did not exit within ${ms} ms\n${child.out()}`);
  return code;
}

describe('hbagg demo --nats', () => {
  it('exits 1 saying it cannot reach NATS at the URL, and what to do, when nothing listens there', async () => {
    const port = await freePort();
    const url = `nats://127.0.0.1:${port}`;
    const child = demo(['--nats', url, '--duration', '2']);
    expect(await exitWithin(child, 30_000)).toBe(1);
    expect(child.stderr()).toContain(`cannot reach NATS at ${url}`);
    expect(child.stderr()).toMatch(/leave out --nats/);
  }, 40_000);

  it('exits 1 when the URL answers but is not NATS, without hanging past its deadline', async () => {
    const silent = await silentServer();
    const child = demo(['--nats', `nats://127.0.0.1:${silent.port}`]);
    expect(await exitWithin(child, 30_000)).toBe(1);
    expect(child.stderr()).toContain(`cannot reach NATS at nats://127.0.0.1:${silent.port}: no NATS server answered`);
  }, 40_000);

  it('ends promptly on SIGTERM while it is still waiting for NATS', async () => {
    const silent = await silentServer();
    const child = demo(['--nats', `nats://127.0.0.1:${silent.port}`]);
    await waitFor(() => silent.connections() > 0, { timeoutMs: 20_000, message: 'the demo to try NATS' });
    const signalled = Date.now();
    child.proc.kill('SIGTERM');
    expect(await exitWithin(child, 30_000)).toBe(0);
    expect(child.stderr()).toContain('stopped before it had started');
    // The old demo waited for its 15 s hard deadline; this is a loose bound, far from it.
    expect(Date.now() - signalled).toBeLessThan(8_000);
  }, 40_000);
});
