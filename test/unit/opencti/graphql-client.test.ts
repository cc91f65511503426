import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { judgePlatform } from '../../../src/daemon/http/health-checks.js';
import { GraphqlClient, graphqlEndpoint } from '../../../src/daemon/opencti/graphql-client.js';

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function serve(handler: http.RequestListener): Promise<string> {
  const s = http.createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}/`;
}

const doc = { query: '{ x }', variables: {}, operationName: 'X' };

describe('the OpenCTI GraphQL client', () => {
  it('posts to <url>/graphql with the bearer token, and keeps the token out of what it returns', async () => {
    let seen: http.IncomingHttpHeaders = {};
    let path = '';
    const url = await serve((req, res) => {
      seen = req.headers;
      path = req.url ?? '';
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ message: `bad token ${req.headers.authorization}` }] }));
    });
    const res = await new GraphqlClient({ url, token: 's3cret-token', timeoutMs: 2000, userAgent: 'hbagg/test' }).post(doc);
    expect(path).toBe('/graphql');
    expect(seen.authorization).toBe('Bearer s3cret-token');
    expect(res.status).toBe(401);
    expect(res.text).not.toContain('s3cret-token');
    expect(res.text).toContain('[redacted]');
  });

  it('reads Retry-After and gives up on a platform that does not answer within the timeout', async () => {
    const url = await serve((req, res) => {
      if (req.headers['x-hang']) return; // never answers
      res.writeHead(503, { 'retry-after': '7' }).end('busy');
    });
    const client = new GraphqlClient({ url, timeoutMs: 300, userAgent: 'hbagg/test' });
    expect(await client.post(doc)).toMatchObject({ status: 503, retryAfterMs: 7000 });
    const hang = new GraphqlClient({ url: url.replace(/\/$/, '/base'), timeoutMs: 300, userAgent: 'hbagg/test' });
    expect(hang.endpoint).toMatch(/\/base\/graphql$/);
    const stalled = await serve(() => undefined);
    const res = await new GraphqlClient({ url: stalled, timeoutMs: 300, userAgent: 'hbagg/test' }).post(doc);
    expect(res.status).toBeUndefined();
    expect(res.error).toBe('no answer within 300 ms');
  });

  it('joins the base URL and /graphql with or without a trailing slash', () => {
    expect(graphqlEndpoint('https://opencti.example')).toBe('https://opencti.example/graphql');
    expect(graphqlEndpoint('https://opencti.example/octi/')).toBe('https://opencti.example/octi/graphql');
  });
});

describe('/healthz platform check with nothing to ping', () => {
  it('is ok while no request is owed, and still fails on a failed last request', () => {
    const base = { nowWall: 1_000_000, startedAtWall: 0, last: undefined, lastAcceptedWall: undefined, allowanceMs: 1000 };
    expect(judgePlatform(base).ok).toBe(false);
    expect(judgePlatform({ ...base, idle: 'no live OpenCTI connector to ping' })).toEqual({
      ok: true, detail: { idle: 'no live OpenCTI connector to ping' },
    });
    const failed = { atWall: 999_000, atMono: 0, outcome: 'failed' as const, error: 'no answer within 5000 ms' };
    expect(judgePlatform({ ...base, last: failed, idle: 'no live OpenCTI connector to ping' }).ok).toBe(false);
  });
});
