/**
 * What the daemon's HTTP interface shows, and to whom. `GET /v1/workers` hands
 * out instance ids (with which a caller could forge a Leave) and the workers'
 * meta (which may hold anything a worker chose to put there): the first needs
 * the token when one is set, the second is hidden unless `http.expose_meta`.
 */
import type { Logger } from 'pino';
import type { HttpConfig } from '../../config/types.js';
import type { PingWorker } from '../../protocol/schemas.js';

/** 127.0.0.0/8, ::1, localhost (and the IPv4-mapped form of 127.x). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Warns once at start when anyone on the network could use the HTTP interface without a token. */
export function warnIfExposed(http: HttpConfig, log: Logger): void {
  if (http.token !== undefined || isLoopbackHost(http.host)) return;
  log.warn(
    { listen: http.listen },
    `http.listen ${http.listen} is not a loopback address and http.token is not set: anyone who can reach it can send beats ` +
      'and Leaves for any worker and list them; set http.token (HBAGG_HTTP_TOKEN) or listen on 127.0.0.1',
  );
}

/** The worker list as GET /v1/workers shows it: meta values only when `expose_meta` is on. */
export function workersView(workers: PingWorker[], exposeMeta: boolean): PingWorker[] {
  if (exposeMeta) return workers;
  return workers.map(({ meta: _hidden, ...rest }) => rest);
}
