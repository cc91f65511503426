import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  quantile,
  startNatsServer,
  startPlatformStub,
  startTestDaemon,
  waitFor,
  type NatsServerHandle,
  type PlatformStub,
  type TestDaemon,
} from '../../testing/index.js';
import type { HealthCheck, HealthReport } from '../../src/daemon/http/health.js';
import { CHECK_TIMEOUT_MS } from '../../src/daemon/http/health-checks.js';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { get, rawRequest } from './raw-http.js';

interface StormAnswer {
  path: string;
  status: number;
  ms: number;
  body?: string;
  responses: number;
  closed: boolean;
}

/** Fires `paths` all at once from a child process (so the client does not share the daemon's event loop). */
async function probeStorm(port: number, paths: string[]): Promise<StormAnswer[]> {
  const script = fileURLToPath(new URL('./probe-storm.mjs', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, [script, String(port), JSON.stringify(paths)], {
    maxBuffer: 16 * 1024 * 1024,
    timeout: 20_000,
  });
  return JSON.parse(stdout) as StormAnswer[];
}

/** Everything the process reports that a correct server never causes. */
const trouble: string[] = [];
const onUncaught = (err: Error) => trouble.push(`uncaughtException: ${err.stack ?? String(err)}`);
const onUnhandled = (reason: unknown) => trouble.push(`unhandledRejection: ${String(reason)}`);
const onWarning = (w: Error) => trouble.push(`warning: ${w.name}: ${w.message}`);

/** A check that never settles and ignores its abort signal: the worst a dependency can do. */
function hangingCheck(name: string, timeoutMs: number): { check: HealthCheck; calls: () => number } {
  let calls = 0;
  return {
    check: {
      name,
      timeoutMs,
      run: () => {
        calls++;
        return new Promise<void>(() => undefined);
      },
    },
    calls: () => calls,
  };
}

function stats(ms: number[]): { p50: number; p99: number; max: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 10) / 10;
  return { p50: r(quantile(sorted, 0.5)), p99: r(quantile(sorted, 0.99)), max: r(sorted.at(-1) ?? NaN) };
}

/** Log lines no probe may cause: ERR_HTTP_HEADERS_SENT anywhere, any error-level line (but the test's own throwing routes). */
function headerSentErrors(t: TestDaemon): unknown[] {
  return t.logs.filter(
    (l) =>
      JSON.stringify(l).includes('ERR_HTTP_HEADERS_SENT') ||
      ((l.level === 'error' || l.level === 'fatal') && !String(l.url).startsWith('/test-')),
  );
}

describe('probes against a daemon with a real nats-server and platform stub', () => {
  let nats: NatsServerHandle;
  let stub: PlatformStub;
  let t: TestDaemon;
  let port: number;
  /** Every answer as the server saw it: from the request's arrival to its answer written. */
  const served: { route: string; status: number; ms: number }[] = [];

  beforeAll(async () => {
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUnhandled);
    process.on('warning', onWarning);
    nats = await startNatsServer();
    stub = await startPlatformStub();
    t = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url });
    port = (await t.daemon.snapshot()).http!.port;
    t.daemon.testHooks.onResponse((route, status, ms) => served.push({ route, status, ms }));
  });

  afterAll(async () => {
    await t?.stop();
    await stub?.close();
    await nats?.stop();
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUnhandled);
    process.off('warning', onWarning);
  });

  afterEach(() => {
    expect(trouble).toEqual([]);
    expect(headerSentErrors(t)).toEqual([]);
  });

  it('answers healthy probes 200 with every check ok', async () => {
    await waitFor(() => stub.accepted().length > 0, { message: 'a first accepted ping' });
    const health = await rawRequest(port, get('/healthz'));
    const report = JSON.parse(health.body) as HealthReport;
    expect(health.status, health.body).toBe(200);
    expect(Object.keys(report.checks).sort()).toEqual(['nats', 'platform', 'state_dir', 'subject_space']);
    for (const c of Object.values(report.checks)) expect(c).toMatchObject({ status: 'ok', duration_ms: expect.any(Number) });
    const live = await rawRequest(port, get('/livez'));
    expect(live.status).toBe(200);
    expect(JSON.parse(live.body)).toMatchObject({ status: 'ok', event_loop: { p99_ms: expect.any(Number) } });
    expect((await rawRequest(port, get('/readyz'))).status).toBe(200);
  });

  it('answers 1,000 concurrent probes within the check timeout + 100 ms, exactly once each, while one check hangs', async () => {
    const timeoutMs = CHECK_TIMEOUT_MS;
    const hung = hangingCheck('platform', timeoutMs);
    t.daemon.testHooks.setHealthCheck(hung.check);
    const boundMs = timeoutMs + 100;

    const storm = async (paths: string[]) => {
      served.splice(0);
      const roundsBefore = (await t.daemon.snapshot()).healthRounds;
      const answers = await probeStorm(port, paths);
      return { answers, served: served.splice(0), rounds: (await t.daemon.snapshot()).healthRounds - roundsBefore };
    };

    // 1,000 at /healthz: one shared round, the hung check reported as timeout.
    const healthz = await storm(Array.from({ length: 1000 }, () => '/healthz'));
    expect(healthz.answers).toHaveLength(1000);
    for (const a of healthz.answers) {
      expect(a.responses).toBe(1);
      expect(a.status).toBe(503);
    }
    const report = JSON.parse(healthz.answers.find((a) => a.body)!.body!) as HealthReport;
    expect(report.checks.platform).toMatchObject({ status: 'timeout', error: `no answer within ${timeoutMs} ms` });
    expect(report.checks.nats!.status).toBe('ok');
    expect(report.checks.state_dir!.status).toBe('ok');
    expect(hung.calls()).toBe(1);

    // 1,000 mixed across the three probes, the check still hanging.
    const paths = Array.from({ length: 1000 }, (_, i) => ['/healthz', '/readyz', '/livez'][i % 3]!);
    const mixed = await storm(paths);
    mixed.answers.forEach((a, i) => {
      expect(a.responses).toBe(1);
      expect(a.status).toBe(paths[i] === '/healthz' ? 503 : 200);
    });
    // Every round after the first waits on the same pending run: the hung check never piles up.
    expect(hung.calls()).toBe(1);

    const lines = [`probe storms, one check hanging (its timeout ${timeoutMs} ms, bound ${boundMs} ms), client in its own process:`];
    const report1 = (label: string, client: number[], server: number[]) => {
      const c = stats(client);
      const s = stats(server);
      lines.push(`  ${label}: client p50 ${c.p50} p99 ${c.p99} max ${c.max} ms | server p50 ${s.p50} p99 ${s.p99} max ${s.max} ms`);
    };
    report1(`1000 x /healthz (rounds of checks: ${healthz.rounds})`, healthz.answers.map((a) => a.ms), healthz.served.map((x) => x.ms));
    for (const p of ['/healthz', '/readyz', '/livez']) {
      report1(
        `mixed ${p} x${paths.filter((x) => x === p).length}`,
        mixed.answers.filter((a) => a.path === p).map((a) => a.ms),
        mixed.served.filter((x) => x.route === p).map((x) => x.ms),
      );
    }
    console.info(lines.join('\n'));

    // The bound is on the daemon's answer: from a probe's arrival to its answer
    // written. The client's clock also counts 1,000 connections being set up on
    // a shared 2-core machine (see /readyz above, which touches no check), so it
    // is reported, not asserted.
    for (const x of [...healthz.served, ...mixed.served]) expect(x.ms).toBeLessThanOrEqual(boundMs);
    expect(healthz.served).toHaveLength(1000);
    expect(mixed.served).toHaveLength(1000);
    expect(healthz.rounds).toBeGreaterThanOrEqual(1);
    expect(healthz.rounds).toBeLessThanOrEqual(2);
  });

  it('cleans up after clients that leave before their answer', async () => {
    const hung = hangingCheck('platform', CHECK_TIMEOUT_MS);
    t.daemon.testHooks.setHealthCheck(hung.check);
    let aborted = 0;
    t.daemon.testHooks.route('GET', '/test-slow', (_req, _url, ctx) =>
      new Promise((resolve) => {
        ctx.signal.addEventListener('abort', () => {
          aborted++;
          resolve({ status: 200, body: { late: true } });
        });
      }),
    );
    // Each client gives up after 50 ms, long before the answer.
    const gone = await Promise.all([
      ...Array.from({ length: 50 }, () => rawRequest(port, get('/healthz'), { timeoutMs: 50 })),
      ...Array.from({ length: 20 }, () => rawRequest(port, get('/test-slow'), { timeoutMs: 50 })),
    ]);
    expect(gone.every((a) => a.status === 0)).toBe(true);
    await waitFor(() => aborted === 20, { message: 'every slow handler saw its client leave' });
    // The daemon still answers afterwards.
    expect((await rawRequest(port, get('/livez'))).status).toBe(200);
    expect((await rawRequest(port, get('/healthz'))).responses).toBe(1);
  });

  it('turns a throwing or rejecting handler into one 500 with a JSON body', async () => {
    t.daemon.testHooks.route('GET', '/test-throws', () => {
      throw new Error('sync boom');
    });
    t.daemon.testHooks.route('GET', '/test-rejects', () => Promise.reject(new Error('async boom')));
    for (const [path, msg] of [['/test-throws', 'sync boom'], ['/test-rejects', 'async boom']] as const) {
      const a = await rawRequest(port, get(path));
      expect(a.status).toBe(500);
      expect(a.responses).toBe(1);
      expect(a.headers['content-type']).toMatch(/^application\/json/);
      expect(JSON.parse(a.body)).toEqual({ error: `internal error: ${msg}` });
    }
    const logged = t.logs.filter((l) => l.msg === 'http handler failed');
    expect(logged.map((l) => l.url)).toEqual(['/test-throws', '/test-rejects']);
  });

  it('reports nats as not ready (503) while the nats-server is down and ready again after it restarts; /livez stays 200', async () => {
    const livez: number[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        livez.push((await rawRequest(port, get('/livez'), { timeoutMs: 2000 })).status);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      await nats.kill();
      const down = await waitFor(
        async () => {
          const a = await rawRequest(port, get('/readyz'));
          return a.status === 503 && a;
        },
        { timeoutMs: 10_000, message: '/readyz 503 after the nats-server is killed' },
      );
      expect(JSON.parse(down.body)).toMatchObject({ status: 'not ready', checks: { nats: { status: 'fail' } } });
      const health = await waitFor(
        async () => {
          const a = await rawRequest(port, get('/healthz'));
          const r = JSON.parse(a.body) as HealthReport;
          return r.checks.nats?.status === 'fail' && a;
        },
        { timeoutMs: 5000, message: '/healthz reports nats failed' },
      );
      expect(health.status).toBe(503);
      expect((JSON.parse(health.body) as HealthReport).checks.nats!.error).toMatch(/not (subscribed|connected)/);

      await nats.restart();
      await waitFor(async () => (await rawRequest(port, get('/readyz'))).status === 200, {
        timeoutMs: 15_000,
        message: '/readyz 200 after the nats-server restarts',
      });
    } finally {
      polling = false;
      await poller;
    }
    expect(livez.length).toBeGreaterThan(0);
    expect(livez.filter((s) => s !== 200)).toEqual([]);
  });

  it('answers /readyz 503 while the daemon is stopping', async () => {
    const own = await startPlatformStub();
    const d = await startTestDaemon({ natsUrl: nats.url, platformUrl: own.url, env: { HBAGG_SHUTDOWN_TIMEOUT_MS: '3000' } });
    try {
      const p = (await d.daemon.snapshot()).http!.port;
      expect((await rawRequest(p, get('/readyz'))).status).toBe(200);
      own.respondWith({ hang: true }); // the final ping hangs, so stopping takes a while
      const stopping = d.stop();
      const a = await waitFor(
        async () => {
          const r = await rawRequest(p, get('/readyz'));
          return r.status === 503 && r;
        },
        { timeoutMs: 2500, message: '/readyz 503 while stopping' },
      );
      expect(JSON.parse(a.body)).toMatchObject({ checks: { daemon: { status: 'fail', state: 'stopping' } } });
      expect((await rawRequest(p, get('/livez'))).status).toBe(200);
      await stopping;
      expect(headerSentErrors(d)).toEqual([]);
    } finally {
      await d.stop();
      await own.close();
    }
  });
});
