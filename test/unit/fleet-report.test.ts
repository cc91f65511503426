import { headers } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { statusBody, workersReply, type StatusBody, type StatusDeps } from '../../src/daemon/fleet/endpoints.js';
import { endpointSubject } from '../../src/daemon/fleet/presence.js';
import { sharedSubjectMessage } from '../../src/daemon/fleet/twin-guard.js';
import type { FleetMember } from '../../src/fleet/discover.js';
import { buildReport, duration, formatTable, judge } from '../../src/fleet/report.js';
import type { PingWorker } from '../../src/protocol/schemas.js';

function status(over: Partial<StatusBody> = {}): StatusBody {
  return {
    node: 'n1', instance: 'i1', version: '1.0.0', subject_prefix: 'hb', http: '127.0.0.1:9470',
    started_at: '2026-11-30T00:00:00.000Z', uptime_ms: 65_000,
    pacer: { state: 'idle', interval_ms: 4000, consecutive_failures: 0 },
    last_ping: { outcome: 'accepted', at: '2026-11-30T00:01:04.000Z', age_ms: 1200 },
    last_accepted_at: '2026-11-30T00:01:04.000Z',
    workers: { active: 3, draining: 1, stopped: 0, lost: 2 },
    journal: { ok: true, state: 'open' }, twin: null,
    ...over,
  };
}

const member = (s: StatusBody | undefined, extra: Partial<FleetMember> = {}): FleetMember => ({
  id: 'ID1', node: 'n1', version: '1.0.0', metadata: { node: 'n1', instance: 'i1', subject_prefix: 'hb', http: '127.0.0.1:9470' },
  ...(s ? { status: s } : {}),
  ...extra,
});

describe('hbagg fleet verdicts', () => {
  it('finds a healthy node healthy', () => {
    expect(judge(member(status()))).toEqual([]);
  });

  it('marks a failed last ping, an unhealthy journal, a twin, a silent status and a foreign instance', () => {
    expect(judge(member(status({ last_ping: { outcome: 'failed', at: 'x', age_ms: 5, status: 500, error: 'boom' } })))).toEqual([
      'last ping failed (HTTP 500: boom)',
    ]);
    expect(judge(member(status({ journal: { ok: false, state: 'open', error: 'the last journal write failed' } })))).toEqual([
      'journal: the last journal write failed',
    ]);
    expect(judge(member(status({ twin: { node: 'n2', instance: 'i2', seen_at: 'x' } })))[0]).toContain('node "n2"');
    expect(judge(member(undefined, { statusError: 'status request failed: TIMEOUT' }))).toEqual(['status request failed: TIMEOUT']);
    expect(judge(member(status({ instance: 'other' })))[0]).toContain('two daemons use node id "n1"');
  });

  it('a daemon that has not pinged yet is not unhealthy', () => {
    expect(judge(member(status({ last_ping: null })))).toEqual([]);
  });

  it('prints one row per node, marks the unhealthy ones and sums up', () => {
    const r = buildReport(
      [member(status()), member(status({ node: 'n2', instance: 'i2', last_ping: { outcome: 'throttled', at: 'x', age_ms: 300, status: 429 } }), { id: 'ID2', node: 'n2', metadata: { instance: 'i2' } })],
      'nats://hub:4222',
      1000,
    );
    const lines = formatTable(r).split('\n');
    expect(lines[0]).toMatch(/^\s+NODE\s+VERSION\s+UPTIME\s+ACTIVE\s+DRAINING\s+STOPPED\s+LOST\s+INTERVAL\s+LAST PING\s+HEALTH$/);
    expect(lines[1]).toMatch(/^ {3}n1 .*1m05s\s+3\s+1\s+0\s+2\s+4\.0s\s+accepted 1\.2s ago\s+ok$/);
    expect(lines[2]).toMatch(/^! {2}n2 .*UNHEALTHY: last ping throttled \(HTTP 429\)$/);
    expect(lines[3]).toBe('2 nodes, 1 unhealthy');
    expect(r.unhealthy).toBe(1);
  });

  it('says so when nobody answered', () => {
    expect(formatTable(buildReport([], 'nats://hub:4222', 800))).toBe('no hbagg answered on nats://hub:4222 within 800 ms\n');
  });

  it('writes durations short', () => {
    expect([duration(undefined), duration(850), duration(12_340), duration(245_000), duration(11_520_000), duration(190_800_000)]).toEqual([
      '-', '850ms', '12.3s', '4m05s', '3h12m', '2d05h',
    ]);
  });
});

describe('the hbagg service endpoints', () => {
  const w = (meta?: Record<string, string>): PingWorker =>
    ({ worker: 'w', instance: 'i', state: 'active', since: 1, first_seen: 1, last_seen: 1, beats: 1, seq: 1, ...(meta ? { meta } : {}) }) as PingWorker;
  const req = (data = '', auth?: string) => {
    const h = auth ? headers() : undefined;
    if (h && auth) h.set('Authorization', auth);
    return { data: new TextEncoder().encode(data), headers: h };
  };

  it('workers: meta values only with expose_meta', () => {
    const registry = { snapshot: () => [w({ role: 'r' })] };
    const hidden = workersReply({ node: 'n', registry, token: undefined, exposeMeta: false }, req());
    expect(hidden).toEqual({ ok: true, body: { node: 'n', workers: [w()] } });
    const shown = workersReply({ node: 'n', registry, token: undefined, exposeMeta: true }, req());
    expect(shown).toEqual({ ok: true, body: { node: 'n', workers: [w({ role: 'r' })] } });
  });

  it('workers: the token in a header or the body; a wrong one or none is a 401 error', () => {
    const d = { node: 'n', registry: { snapshot: () => [] }, token: 's3', exposeMeta: false };
    expect(workersReply(d, req('', 'Bearer s3')).ok).toBe(true);
    expect(workersReply(d, req('{"token":"s3"}')).ok).toBe(true);
    expect(workersReply(d, req('', 'Bearer nope'))).toMatchObject({ ok: false, code: 401 });
    expect(workersReply(d, req('{"token":"nope"}'))).toMatchObject({ ok: false, code: 401 });
    expect(workersReply(d, req('not json'))).toMatchObject({ ok: false, code: 401, error: expect.stringContaining('authorization required') });
  });

  it('endpoint subjects are one token per node', () => {
    expect(endpointSubject('node-a', 'status')).toBe('hbagg.node-a.status');
    expect(endpointSubject('rack1.node a', 'workers')).toBe('hbagg.rack1_node_a.workers');
  });

  it('status: the pacer phase follows failures, Retry-After and a ping in flight', () => {
    const deps = (p: Partial<StatusDeps['pacer']>): StatusDeps => ({
      info: { node: 'n', instance: 'i', version: 'v', startedAt: 1_000 },
      prefix: 'hb',
      httpAddress: () => '127.0.0.1:1',
      registry: { countByState: () => ({ active: 0, draining: 0, stopped: 0, lost: 0 }) },
      pacer: { currentIntervalMs: () => 1000, consecutiveFailures: () => 0, heldUntil: () => -Infinity, dueAt: () => 50, ...p },
      pinger: { last: undefined, lastAcceptedWall: undefined },
      journal: { state: 'open', writeFailed: false },
      twin: () => undefined,
      now: () => ({ wall: 6_000, mono: 100 }),
    });
    expect(statusBody(deps({})).pacer.state).toBe('idle');
    expect(statusBody(deps({ dueAt: () => Infinity })).pacer.state).toBe('pinging');
    expect(statusBody(deps({ consecutiveFailures: () => 2 })).pacer.state).toBe('backoff');
    expect(statusBody(deps({ consecutiveFailures: () => 1, heldUntil: () => 5_000 })).pacer).toEqual({ state: 'held', interval_ms: 1000, consecutive_failures: 1 });
    expect(statusBody(deps({})).uptime_ms).toBe(5_000);
  });

  it('the refusal names the other node, the probe subject and both fixes', () => {
    const m = sharedSubjectMessage({ node: 'n2', instance: 'abc', version: '1', http: '10.0.0.2:9470' }, 'hb');
    expect(m).toContain('another hbagg answers on hb.probe: node "n2" (instance abc, http 10.0.0.2:9470)');
    expect(m).toContain('HBAGG_SUBJECT_PREFIX=hb.<node>');
    expect(m).toContain('local NATS leaf node whose remote does not share hb.>');
  });
});
