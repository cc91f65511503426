/**
 * The daemon's routes (PROTOCOL.md section 4). Each handler only computes a
 * reply; the server writes it once.
 */
import type { Daemon } from './daemon.js';
import type { HttpServer } from './http-server.js';

export function registerRoutes(http: HttpServer, d: Daemon): void {
  http.route('GET', '/livez', () => ({ status: 200, body: { status: 'ok' } }));

  http.route('GET', '/readyz', () => {
    const nats = d.nats.ready;
    const ready = nats && d.state === 'running';
    return {
      status: ready ? 200 : 503,
      body: {
        status: ready ? 'ready' : 'not ready',
        checks: { nats: { status: nats ? 'ok' : 'fail', state: d.nats.state }, daemon: { status: d.state === 'running' ? 'ok' : 'fail', state: d.state } },
      },
    };
  });

  http.route('GET', '/v1/workers', () => ({
    status: 200,
    body: { node: d.info.node, workers: d.registry.snapshot() },
  }));

  http.route('GET', '/metrics', async () => ({
    status: 200,
    contentType: d.metrics.registry.contentType,
    body: await d.metrics.registry.metrics(),
  }));
}
