/**
 * Which workers are OpenCTI connectors, and which connectors are live. Pure:
 * the registry's entries in, one view per connector id out.
 *
 * A worker names its connector in its beats' meta (`opencti_connector_id`)
 * or in the config map `platform.opencti.connectors`; meta wins. Replicas
 * (many workers, one id) make one connector, live while any of them is
 * `active` or `draining`. The state and the connector info come from the
 * live replica seen last.
 */
import { CONNECTOR_ID_PATTERN } from '../../config/opencti-schema.js';
import type { PingWorker } from '../../protocol/schemas.js';

/** Meta keys a connector-shaped worker sets (README "Using hbagg with OpenCTI"). */
export const META = {
  id: 'opencti_connector_id',
  /** The connector state as pycti sends it: a JSON string (`json.dumps(state)`). */
  state: 'opencti_connector_state',
  runAndTerminate: 'opencti_run_and_terminate',
  buffering: 'opencti_buffering',
  queueThreshold: 'opencti_queue_threshold',
  queueMessagesSize: 'opencti_queue_messages_size',
  nextRunDatetime: 'opencti_next_run_datetime',
  lastRunDatetime: 'opencti_last_run_datetime',
} as const;

/** OpenCTI's ConnectorInfoInput. */
export interface ConnectorInfo {
  run_and_terminate: boolean;
  buffering: boolean;
  queue_threshold: number;
  queue_messages_size: number;
  next_run_datetime?: string;
  last_run_datetime?: string;
}

export interface ConnectorView {
  id: string;
  /** Some replica is `active` or `draining`. */
  live: boolean;
  /** Every replica has stopped cleanly (`stopped`, none `lost`): what `delete_on_stop` acts on. */
  stoppedCleanly: boolean;
  /** The config map names this connector (only those may be deleted). */
  listed: boolean;
  /** `worker:instance` of the live replicas, sorted: changes when a replica restarts. */
  epoch: string;
  workers: string[];
  state?: string;
  info?: ConnectorInfo;
}

export interface Unmapped {
  worker: string;
  /** Why it is not sent: no id anywhere, or an id that is not a UUID. */
  reason: string;
}

export interface ConnectorMap {
  connectors: Map<string, ConnectorView>;
  unmapped: Unmapped[];
}

export function mapConnectors(entries: readonly PingWorker[], configured: Readonly<Record<string, string>>): ConnectorMap {
  const connectors = new Map<string, ConnectorView>();
  const unmapped: Unmapped[] = [];
  const listed = new Set(Object.values(configured).map((id) => id.toLowerCase()));
  const newest = new Map<string, number>();
  const epochs = new Map<string, string[]>();
  for (const e of entries) {
    const fromMeta = e.meta?.[META.id];
    const raw = fromMeta !== undefined ? String(fromMeta) : Object.hasOwn(configured, e.worker) ? configured[e.worker] : undefined;
    if (raw === undefined) {
      unmapped.push({ worker: e.worker, reason: `no ${META.id} in meta and not in platform.opencti.connectors` });
      continue;
    }
    if (!CONNECTOR_ID_PATTERN.test(raw)) {
      unmapped.push({ worker: e.worker, reason: `${META.id} ${JSON.stringify(raw.slice(0, 64))} is not a UUID` });
      continue;
    }
    // OpenCTI ids are lower-case UUIDs; one connector, however a replica spells it.
    const id = raw.toLowerCase();
    const live = e.state === 'active' || e.state === 'draining';
    let v = connectors.get(id);
    if (v === undefined) {
      v = { id, live: false, stoppedCleanly: true, listed: listed.has(id), epoch: '', workers: [] };
      connectors.set(id, v);
    }
    v.workers.push(e.worker);
    if (e.state !== 'stopped') v.stoppedCleanly = false;
    if (!live) continue;
    v.live = true;
    let list = epochs.get(id);
    if (list === undefined) epochs.set(id, (list = []));
    list.push(`${e.worker}:${e.instance}`);
    if (e.last_seen < (newest.get(id) ?? -Infinity)) continue;
    newest.set(id, e.last_seen);
    const state = e.meta?.[META.state];
    if (typeof state === 'string') v.state = state;
    const info = connectorInfo(e.meta);
    if (info !== undefined) v.info = info;
  }
  for (const [id, list] of epochs) {
    const v = connectors.get(id);
    if (v !== undefined) v.epoch = list.sort().join(',');
  }
  return { connectors, unmapped };
}

/** ConnectorInfoInput from meta, only when the four required fields are there with the right types. */
export function connectorInfo(meta: PingWorker['meta']): ConnectorInfo | undefined {
  if (meta === undefined) return undefined;
  const rt = meta[META.runAndTerminate];
  const buf = meta[META.buffering];
  const qt = meta[META.queueThreshold];
  const qs = meta[META.queueMessagesSize];
  if (typeof rt !== 'boolean' || typeof buf !== 'boolean' || typeof qt !== 'number' || typeof qs !== 'number') return undefined;
  const info: ConnectorInfo = { run_and_terminate: rt, buffering: buf, queue_threshold: qt, queue_messages_size: qs };
  const next = meta[META.nextRunDatetime];
  const last = meta[META.lastRunDatetime];
  if (typeof next === 'string') info.next_run_datetime = next;
  if (typeof last === 'string') info.last_run_datetime = last;
  return info;
}
