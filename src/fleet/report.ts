/**
 * What `hbagg fleet` makes of the daemons it found: a verdict per node
 * (unhealthy when its last ping failed, its journal is unhealthy, another
 * daemon shares its beat subjects, or it did not answer `status`), a table
 * for people and a JSON document for scripts. Pure: `now` comes in.
 */
import type { StatusBody } from '../daemon/fleet/endpoints.js';
import type { FleetMember } from './discover.js';

export interface FleetRow {
  node: string;
  id: string;
  instance: string | undefined;
  version: string;
  uptime_ms: number | undefined;
  workers: Record<string, number> | undefined;
  interval_ms: number | undefined;
  last_ping: { outcome: string; age_ms: number } | null | undefined;
  healthy: boolean;
  problems: string[];
  http: string | undefined;
  /** The daemon's whole `status` answer, for scripts that want more than the row. */
  status: StatusBody | undefined;
}

export interface FleetReport {
  nats: string;
  wait_ms: number;
  nodes: FleetRow[];
  unhealthy: number;
}

export function judge(m: FleetMember): string[] {
  const s = m.status;
  if (!s) return [m.statusError ?? 'no status'];
  const problems: string[] = [];
  if (s.instance !== m.metadata['instance']) {
    problems.push(`status came from instance ${s.instance}, not ${m.metadata['instance'] ?? '?'}: two daemons use node id "${m.node}"`);
  }
  if (s.last_ping && s.last_ping.outcome !== 'accepted') {
    const how = [s.last_ping.status !== undefined ? `HTTP ${s.last_ping.status}` : undefined, s.last_ping.error].filter(Boolean).join(': ');
    problems.push(`last ping ${s.last_ping.outcome}${how ? ` (${how})` : ''}`);
  }
  if (!s.journal.ok) problems.push(`journal: ${s.journal.error ?? s.journal.state}`);
  if (s.twin) problems.push(`shares its beat subjects with node "${s.twin.node}" (instance ${s.twin.instance})`);
  return problems;
}

export function buildReport(members: readonly FleetMember[], nats: string, waitMs: number): FleetReport {
  const nodes = members.map((m): FleetRow => {
    const s = m.status;
    const problems = judge(m);
    return {
      node: m.node,
      id: m.id,
      instance: m.metadata['instance'],
      version: m.version,
      uptime_ms: s?.uptime_ms,
      workers: s?.workers,
      interval_ms: s?.pacer.interval_ms,
      last_ping: s ? (s.last_ping ? { outcome: s.last_ping.outcome, age_ms: s.last_ping.age_ms } : null) : undefined,
      healthy: problems.length === 0,
      problems,
      http: m.metadata['http'],
      status: s,
    };
  });
  return { nats, wait_ms: waitMs, nodes, unhealthy: nodes.filter((n) => !n.healthy).length };
}

/** A short human duration: 850ms, 12.3s, 4m05s, 3h12m, 2d04h. */
export function duration(ms: number | undefined): string {
  if (ms === undefined) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const two = (n: number) => String(Math.floor(n)).padStart(2, '0');
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m${two((ms % 60_000) / 1000)}s`;
  if (ms < 86_400_000) return `${Math.floor(ms / 3_600_000)}h${two((ms % 3_600_000) / 60_000)}m`;
  return `${Math.floor(ms / 86_400_000)}d${two((ms % 86_400_000) / 3_600_000)}h`;
}

const STATES = ['active', 'draining', 'stopped', 'lost'] as const;

export function formatTable(r: FleetReport): string {
  if (r.nodes.length === 0) return `no hbagg answered on ${r.nats} within ${r.wait_ms} ms\n`;
  const head = ['', 'NODE', 'VERSION', 'UPTIME', ...STATES.map((s) => s.toUpperCase()), 'INTERVAL', 'LAST PING', 'HEALTH'];
  const rows = r.nodes.map((n) => [
    n.healthy ? ' ' : '!',
    n.node,
    n.version,
    duration(n.uptime_ms),
    ...STATES.map((s) => (n.workers ? String(n.workers[s] ?? 0) : '-')),
    duration(n.interval_ms),
    n.last_ping === undefined ? '-' : n.last_ping === null ? 'none yet' : `${n.last_ping.outcome} ${duration(n.last_ping.age_ms)} ago`,
    n.healthy ? 'ok' : `UNHEALTHY: ${n.problems.join('; ')}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const summary = `${r.nodes.length} node${r.nodes.length === 1 ? '' : 's'}, ${r.unhealthy} unhealthy`;
  return `${[line(head), ...rows.map(line)].join('\n')}\n${summary}\n`;
}
