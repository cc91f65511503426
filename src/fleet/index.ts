/**
 * `hbagg fleet`: connect once, discover, report, leave. The exit code is the
 * verdict: 0 when every daemon found is healthy, 1 when any is not or none
 * answered (a check run from cron must not pass on an empty bus).
 */
import { connect } from '@nats-io/transport-node';
import type { NatsConfig } from '../config/types.js';
import { natsConnectOptions } from '../daemon/nats-ingest.js';
import { discoverFleet } from './discover.js';
import { buildReport, formatTable, type FleetReport } from './report.js';

export { discoverFleet, type FleetMember } from './discover.js';
export { buildReport, formatTable, judge, type FleetReport, type FleetRow } from './report.js';

export const DEFAULT_FLEET_WAIT_MS = 1000;

export interface FleetOptions {
  /** Connection settings (servers, auth, TLS) as the daemon's config has them. */
  nats: NatsConfig;
  waitMs: number;
  json: boolean;
}

export interface FleetResult {
  code: number;
  stdout: string;
  stderr: string;
  report?: FleetReport;
}

export async function runFleet(o: FleetOptions): Promise<FleetResult> {
  const where = o.nats.servers.join(',');
  let nc;
  try {
    // One try, no waiting for a server: a check should say at once that it cannot look.
    nc = await connect({ ...natsConnectOptions(o.nats), name: 'hbagg-fleet', waitOnFirstConnect: false, maxReconnectAttempts: 0, timeout: 5000 });
  } catch (err) {
    return { code: 1, stdout: '', stderr: `hbagg fleet: cannot connect to NATS at ${where}: ${(err as Error).message}\n` };
  }
  try {
    const report = buildReport(await discoverFleet(nc, o.waitMs), where, o.waitMs);
    const code = report.nodes.length === 0 || report.unhealthy > 0 ? 1 : 0;
    const stdout = o.json ? `${JSON.stringify(report, null, 2)}\n` : formatTable(report);
    return { code, stdout, stderr: '', report };
  } finally {
    await nc.close().catch(() => undefined);
  }
}
