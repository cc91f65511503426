/**
 * The daemon's HTTP interface on plain node:http. Handlers return a reply;
 * `send` is the only function that writes a response, and it writes at most
 * once per request, so no route can answer twice or throw into the server.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';

export interface Reply {
  status: number;
  /** JSON-encoded unless `contentType` is given (then sent as is). */
  body?: unknown;
  contentType?: string;
  headers?: Record<string, string>;
}

export type Handler = (req: IncomingMessage, url: URL) => Reply | Promise<Reply>;

export class HttpServer {
  private readonly server: Server;
  private readonly routes = new Map<string, Handler>();

  constructor(
    private readonly log: Logger,
    opts: { requestTimeoutMs?: number; headersTimeoutMs?: number } = {},
  ) {
    this.server = createServer((req, res) => void this.handle(req, res));
    // A slow client cannot hold a socket: headers within 5 s, the whole request within 10 s.
    this.server.headersTimeout = opts.headersTimeoutMs ?? 5_000;
    this.server.requestTimeout = opts.requestTimeoutMs ?? 10_000;
    this.server.keepAliveTimeout = 5_000;
  }

  route(method: string, path: string, handler: Handler): this {
    this.routes.set(`${method} ${path}`, handler);
    return this;
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    return this.server.address() as AddressInfo;
  }

  address(): AddressInfo | undefined {
    return (this.server.address() as AddressInfo | null) ?? undefined;
  }

  async close(): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    setTimeout(() => this.server.closeAllConnections(), 1_000).unref();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let reply: Reply;
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const handler = this.routes.get(`${req.method} ${url.pathname}`);
      if (handler) {
        reply = await handler(req, url);
      } else {
        const allowed = [...this.routes.keys()].filter((k) => k.endsWith(` ${url.pathname}`)).map((k) => k.split(' ')[0]!);
        reply = allowed.length
          ? { status: 405, body: { error: `${req.method} is not allowed on ${url.pathname}; use ${allowed.join(', ')}` }, headers: { allow: allowed.join(', ') } }
          : { status: 404, body: { error: `no route ${url.pathname}` } };
      }
    } catch (err) {
      this.log.error({ err, url: req.url }, 'http handler failed');
      reply = { status: 500, body: { error: 'internal error' } };
    }
    send(res, reply);
  }
}

/** Writes `reply` unless this response was already written or the client left. */
export function send(res: ServerResponse, reply: Reply): boolean {
  if (res.headersSent || res.writableEnded || res.destroyed) return false;
  const body =
    reply.contentType !== undefined ? String(reply.body ?? '') : reply.body === undefined ? '' : JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    'content-type': reply.contentType ?? 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...reply.headers,
  });
  res.end(body);
  return true;
}
