import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  startNatsServer,
  startPlatformStub,
  startTestDaemon,
  waitFor,
  type NatsServerHandle,
  type PlatformStub,
  type TestDaemon,
} from '../../testing/index.js';
import { HttpServer } from '../../src/daemon/http/server.js';
import { MAX_BEATS_PER_REQUEST } from '../../src/daemon/http/routes.js';
import { rawRequest, writeAll } from './raw-http.js';

const TOKEN = 's3cret-token-for-tests';
const trouble: string[] = [];
const onUncaught = (err: Error) => trouble.push(`uncaughtException: ${err.stack ?? String(err)}`);
const onUnhandled = (reason: unknown) => trouble.push(`unhandledRejection: ${String(reason)}`);

let seqs = 0;
function beat(worker: string, extra: Record<string, unknown> = {}) {
  return { v: 1, worker, instance: `${worker}-i1`, seq: ++seqs, interval_ms: 1000, ...extra };
}

/** Parses Prometheus text: `name{labels}` -> value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

describe('POST /v1/beat and /v1/leave over HTTP', () => {
  let nats: NatsServerHandle;
  let stub: PlatformStub;
  let t: TestDaemon;
  let port: number;

  beforeAll(async () => {
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUnhandled);
    nats = await startNatsServer();
    stub = await startPlatformStub();
    t = await startTestDaemon({ natsUrl: nats.url, platformUrl: stub.url, env: { HBAGG_HTTP_TOKEN: TOKEN } });
    port = (await t.daemon.snapshot()).http!.port;
  });

  afterAll(async () => {
    await t?.stop();
    await stub?.close();
    await nats?.stop();
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUnhandled);
  });

  afterEach(() => {
    expect(trouble).toEqual([]);
    expect(t.logs.filter((l) => l.level === 'error' || JSON.stringify(l).includes('ERR_HTTP_HEADERS_SENT'))).toEqual([]);
  });

  async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
    const res = await fetch(`${t.base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, json: JSON.parse(text) as Record<string, unknown> };
  }

  async function scrape(): Promise<Map<string, number>> {
    const res = await fetch(`${t.base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    return parseMetrics(await res.text());
  }

  it('accepts one beat with 202 and tracks the worker, as if it came over NATS', async () => {
    const r = await post('/v1/beat', beat('http-one'));
    expect(r).toMatchObject({ status: 202, json: { accepted: 1, rejected: [] } });
    expect(t.daemon.workers().find((w) => w.worker === 'http-one')).toMatchObject({ state: 'active' });
    await waitFor(() => stub.requests.some((p) => JSON.stringify(p.body).includes('"http-one"')), {
      message: 'the worker reaches the platform',
    });
  });

  it('answers an array with per-item results: the good ones accepted, each bad one named by index and why', async () => {
    const r = await post('/v1/beat', [
      beat('http-arr-a'),
      { v: 1, worker: 'http-arr-b', seq: 1 },
      'not a beat',
      beat('http-arr-c', { v: 2 }),
      beat('http-arr-d'),
      beat('http-arr-e', { meta: { a: 'x'.repeat(1500), b: 'y'.repeat(1500), c: 'z'.repeat(1500), d: 'w'.repeat(1500), e: 'v'.repeat(1500), f: 'u'.repeat(1500) } }),
    ]);
    expect(r.status).toBe(202);
    expect(r.json.accepted).toBe(2);
    const rejected = r.json.rejected as unknown[];
    expect(rejected.at(-1)).toMatchObject({ index: 5, reason: 'too_large' });
    rejected.pop();
    expect(r.json.rejected).toEqual([
      { index: 1, reason: 'invalid_schema', error: expect.stringMatching(/^beat instance: .+; interval_ms: /) },
      { index: 2, reason: 'invalid_schema', error: 'beat must be a JSON object' },
      { index: 3, reason: 'unsupported_version', error: 'v: version 2 is not supported (expected 1)' },
    ]);
  });

  it('moves the metrics as beats are accepted and rejected', async () => {
    const before = await scrape();
    await post('/v1/beat', [beat('http-m1'), beat('http-m2'), { v: 1 }]);
    await post('/v1/beat', '{"v": 1,');
    await post('/v1/beat', beat('http-m1', { seq: 0 })); // stale: seq went backwards
    const after = await scrape();
    const delta = (k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
    expect(delta('hbagg_beats_accepted_total')).toBe(2);
    expect(delta('hbagg_beats_rejected_total{reason="invalid_schema"}')).toBe(1);
    expect(delta('hbagg_beats_rejected_total{reason="invalid_json"}')).toBe(1);
    expect(delta('hbagg_beats_rejected_total{reason="stale"}')).toBe(1);
    expect(delta('hbagg_http_requests_total{route="/v1/beat",status="202"}')).toBe(2);
    expect(delta('hbagg_http_requests_total{route="/v1/beat",status="400"}')).toBe(1);
    expect(delta('hbagg_http_requests_total{route="/metrics",status="200"}')).toBe(1);
    // The rest of section 4 and the additions are all there.
    for (const name of [
      'hbagg_pings_total{outcome="accepted"}',
      'hbagg_ping_duration_seconds_count',
      'hbagg_ping_bytes_total',
      'hbagg_ping_interval_seconds',
      'hbagg_workers{state="active"}',
      'hbagg_event_loop_delay_p99_seconds',
      'hbagg_event_loop_delay_max_seconds',
      'process_cpu_user_seconds_total',
      'nodejs_heap_size_used_bytes',
    ]) {
      expect(after.has(name), name).toBe(true);
    }
    expect(after.get('hbagg_ping_bytes_total')).toBeGreaterThan(0);
    expect(after.get('hbagg_workers{state="active"}')).toBeGreaterThanOrEqual(2);
  });

  it('refuses bad JSON with 400 naming the line, column and the text near the error', async () => {
    const r = await post('/v1/beat', '{\n  "v": 1,\n  "worker": "x",\n  "seq": ,\n}');
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(/^body is not valid JSON: .+ \(line 4, column 10, near `.*"seq": ,.*`\)$/);
    const cut = await post('/v1/beat', '{"v": 1, "worker": "x"');
    expect(cut.json.error).toMatch(/^body is not valid JSON: .*\(line 1, column 23/);
    expect((await post('/v1/beat', '')).json).toEqual({ error: 'body is empty; expected a JSON document' });
  });

  it('refuses a body that is not UTF-8, or neither a Beat nor an array, with 400', async () => {
    const bin = await fetch(`${t.base}/v1/beat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]),
    });
    expect(bin.status).toBe(400);
    expect(await bin.json()).toEqual({ error: 'body is not valid UTF-8 text; send JSON encoded as UTF-8' });
    for (const [body, got] of [['42', 'number'], ['"beat"', 'string'], ['null', 'null'], ['true', 'boolean']]) {
      const r = await post('/v1/beat', body!);
      expect(r).toMatchObject({ status: 400, json: { error: `body must be a Beat (a JSON object) or an array of Beats; got ${got}` } });
    }
  });

  it('refuses an empty array with 400 and more than 1,000 beats with 413', async () => {
    expect(await post('/v1/beat', [])).toMatchObject({ status: 400, json: { error: expect.stringMatching(/empty array/) } });
    const many = Array.from({ length: MAX_BEATS_PER_REQUEST + 1 }, () => 0);
    expect(await post('/v1/beat', many)).toMatchObject({
      status: 413,
      json: { error: `body holds 1001 beats; at most 1000 per request, send the rest in another` },
    });
  });

  it('refuses a wrong or missing content type with 415', async () => {
    const text = await post('/v1/beat', JSON.stringify(beat('ct')), { 'content-type': 'text/plain' });
    expect(text).toMatchObject({ status: 415, json: { error: 'content-type "text/plain" is not supported; send "content-type: application/json"' } });
    const latin = await post('/v1/beat', JSON.stringify(beat('ct')), { 'content-type': 'application/json; charset=latin1' });
    expect(latin).toMatchObject({ status: 415, json: { error: expect.stringMatching(/charset "latin1" is not supported/) } });
    const missing = await rawRequest(
      port,
      `POST /v1/beat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
    );
    expect(missing.status).toBe(415);
    expect(JSON.parse(missing.body)).toEqual({ error: 'content-type is missing; send "content-type: application/json"' });
    expect(await post('/v1/beat', beat('ct'), { 'content-type': 'Application/JSON; charset=UTF-8' })).toMatchObject({ status: 202 });
  });

  it('refuses a missing or wrong bearer token with 401 and a Bearer challenge', async () => {
    const missing = await fetch(`${t.base}/v1/beat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(beat('tok')),
    });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="hbagg"');
    expect(await missing.json()).toEqual({ error: 'authorization required: send "authorization: Bearer <http.token>"' });
    for (const auth of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`, 'Bearer']) {
      const r = await post('/v1/beat', beat('tok'), { authorization: auth });
      expect(r.status, auth).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer realm="hbagg"/);
      expect(r.json.error).toMatch(/^authorization refused/);
    }
    const leave = await post('/v1/leave', { v: 1 }, { authorization: 'Bearer nope' });
    expect(leave).toMatchObject({ status: 401, json: { ok: false, error: expect.stringMatching(/^authorization refused/) } });
    // Probes need no token; the worker list (instance ids) does.
    expect((await fetch(`${t.base}/livez`)).status).toBe(200);
    expect((await fetch(`${t.base}/v1/workers`)).status).toBe(401);
  });

  it('answers 413 at once for a declared content-length over 64 KiB, without reading the body, and closes', async () => {
    const head =
      `POST /v1/beat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n` +
      `Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n`;
    // Only the headers and 1 KiB are ever sent: the answer cannot wait for the rest.
    const r = await rawRequest(port, '', { write: (s) => writeAll(s, head + '['.repeat(1024)), timeoutMs: 3000 });
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body)).toEqual({ error: 'body too large: content-length is 10000000 bytes; the limit is 65536 bytes' });
    expect(r.headers.connection).toBe('close');
    expect(r.closedByServer).toBe(true);
    expect(r.responses).toBe(1);
  });

  it('answers 413 for a chunked body once it passes 64 KiB while the client is still sending, and closes', async () => {
    const head =
      `POST /v1/beat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n` +
      `Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const piece = ' '.repeat(8 * 1024);
    let sent = 0;
    let answered = false;
    const r = await rawRequest(port, '', {
      timeoutMs: 5000,
      write: async (s) => {
        s.once('data', () => (answered = true));
        await writeAll(s, head);
        // Up to 4 MiB, slowly; the server should answer after about 64 KiB.
        for (let i = 0; i < 512 && !answered && !s.destroyed; i++) {
          await writeAll(s, `${piece.length.toString(16)}\r\n${piece}\r\n`);
          sent += piece.length;
          await new Promise((res) => setTimeout(res, 2));
        }
      },
    });
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body)).toEqual({ error: 'body too large: the body passed 65536 bytes while being read; the limit is 65536 bytes' });
    expect(r.closedByServer).toBe(true);
    expect(r.responses).toBe(1);
    expect(sent).toBeLessThan(1024 * 1024);
  });

  it('applies a Leave over HTTP through the same path as NATS: reply, suppression, and 400 for a bad one', async () => {
    expect((await post('/v1/beat', beat('http-leaver'))).json.accepted).toBe(1);
    const leave = { v: 1, worker: 'http-leaver', instance: 'http-leaver-i1', seq: ++seqs, phase: 'stopped', reason: 'test' };
    const ok = await post('/v1/leave', leave);
    expect(ok).toMatchObject({ status: 200, json: { ok: true, worker: 'http-leaver', instance: 'http-leaver-i1', state: 'stopped' } });
    expect((await post('/v1/leave', leave)).json).toEqual(ok.json); // repeating is harmless
    const late = await post('/v1/beat', beat('http-leaver'));
    expect(late.json).toMatchObject({ accepted: 0, rejected: [{ index: 0, reason: 'suppressed' }] });

    const bad = await post('/v1/leave', { v: 1, worker: 'http-leaver', instance: 'x', seq: 1 });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ ok: false, error: expect.stringMatching(/phase/) });
    expect(await post('/v1/leave', '{oops')).toMatchObject({ status: 400, json: { ok: false, error: expect.stringMatching(/^body is not valid JSON/) } });
    expect(await post('/v1/leave', [leave])).toMatchObject({ status: 400, json: { ok: false, error: 'leave must be a JSON object' } });
  });

  it('answers 405 with an allow header for a wrong method and 404 for an unknown path', async () => {
    const get = await fetch(`${t.base}/v1/beat`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    expect((await fetch(`${t.base}/nope`)).status).toBe(404);
  });
});

describe('slow clients', () => {
  let http: HttpServer;
  let port: number;
  beforeAll(async () => {
    http = new HttpServer(pino({ level: 'silent' }), { headersTimeoutMs: 300, requestTimeoutMs: 600, checkTimeoutsEveryMs: 100 });
    http.route('POST', '/echo', async (req) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      return { status: 200, body: { bytes: Buffer.concat(chunks).length } };
    });
    port = (await http.listen('127.0.0.1', 0)).port;
  });
  afterAll(() => http.close());

  it('closes a connection whose headers do not arrive within the headers timeout', async () => {
    const r = await rawRequest(port, '', {
      timeoutMs: 5000,
      write: (s) => writeAll(s, 'POST /echo HTTP/1.1\r\nHost: x\r\n'), // and never the end of the headers
    });
    expect(r.closedByServer).toBe(true);
    expect(r.status).toBe(408);
  });

  it('closes a connection whose body does not arrive within the request timeout', async () => {
    const r = await rawRequest(port, '', {
      timeoutMs: 5000,
      write: (s) =>
        writeAll(s, 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":'),
    });
    expect(r.closedByServer).toBe(true);
    expect(r.responses).toBeLessThanOrEqual(1);
    if (r.responses === 1) expect(r.status).toBe(408);
  });
});
