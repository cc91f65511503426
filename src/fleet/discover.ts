/**
 * Finds every hbagg on the bus the way any NATS micro client does: one
 * collecting request on `$SRV.INFO.hbagg` and one on `$SRV.STATS.hbagg`
 * (all answers within a wait window), then each daemon's own `status`
 * endpoint (the subject its INFO names), all at once.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { StatusBody } from '../daemon/fleet/endpoints.js';
import { SERVICE_NAME } from '../daemon/fleet/presence.js';

export interface MicroEndpointInfo {
  name: string;
  subject: string;
  queue_group?: string;
}

export interface MicroInfo {
  type: 'io.nats.micro.v1.info_response';
  name: string;
  id: string;
  version: string;
  metadata?: Record<string, string>;
  endpoints: MicroEndpointInfo[];
}

export interface MicroEndpointStats extends MicroEndpointInfo {
  num_requests: number;
  num_errors: number;
  last_error?: string;
  processing_time: number;
  average_processing_time: number;
}

export interface MicroStats {
  type: 'io.nats.micro.v1.stats_response';
  id: string;
  started: string;
  endpoints: MicroEndpointStats[];
}

/** One daemon as discovery found it; `status` is missing when its endpoint did not answer. */
export interface FleetMember {
  id: string;
  node: string;
  version: string;
  metadata: Record<string, string>;
  started?: string;
  status?: StatusBody;
  statusError?: string;
  endpoints?: MicroEndpointStats[];
}

const decoder = new TextDecoder();

/** Every JSON answer of type `type` to one collecting request, within `waitMs`. */
export async function collect<T extends { type: string; id: string }>(
  nc: NatsConnection,
  subject: string,
  type: string,
  waitMs: number,
): Promise<T[]> {
  const out: T[] = [];
  let replies: AsyncIterable<{ data: Uint8Array }>;
  try {
    replies = await nc.requestMany(subject, undefined, { strategy: 'timer', maxWait: waitMs });
  } catch {
    // No responders: nobody is there.
    return out;
  }
  try {
    for await (const m of replies) {
      try {
        const v = JSON.parse(decoder.decode(m.data)) as T;
        if (v?.type === type && typeof v.id === 'string') out.push(v);
      } catch {
        // Not a micro answer: ignore it, others may still come.
      }
    }
  } catch {
    // A no-responders status ends the iteration with an error: what was collected stands.
  }
  return out;
}

export async function discoverFleet(nc: NatsConnection, waitMs: number): Promise<FleetMember[]> {
  const [infos, stats] = await Promise.all([
    collect<MicroInfo>(nc, `$SRV.INFO.${SERVICE_NAME}`, 'io.nats.micro.v1.info_response', waitMs),
    collect<MicroStats>(nc, `$SRV.STATS.${SERVICE_NAME}`, 'io.nats.micro.v1.stats_response', waitMs),
  ]);
  const byId = new Map(stats.map((s) => [s.id, s]));
  const seen = new Set<string>();
  const members = await Promise.all(
    infos
      .filter((i) => !seen.has(i.id) && seen.add(i.id))
      .map(async (info): Promise<FleetMember> => {
        const metadata = info.metadata ?? {};
        const s = byId.get(info.id);
        const member: FleetMember = {
          id: info.id,
          node: metadata['node'] ?? '?',
          version: info.version,
          metadata,
          ...(s ? { started: s.started, endpoints: s.endpoints } : {}),
        };
        const subject = info.endpoints.find((e) => e.name === 'status')?.subject;
        if (!subject) return { ...member, statusError: 'no status endpoint' };
        try {
          const reply = await nc.request(subject, undefined, { timeout: waitMs });
          const error = reply.headers?.get('Nats-Service-Error');
          if (error) return { ...member, statusError: error };
          return { ...member, status: JSON.parse(decoder.decode(reply.data)) as StatusBody };
        } catch (err) {
          return { ...member, statusError: `status request failed: ${(err as Error).message}` };
        }
      }),
  );
  return members.sort((a, b) => a.node.localeCompare(b.node) || a.id.localeCompare(b.id));
}
