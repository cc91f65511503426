/**
 * The daemon's HTTP interface on plain node:http. Handlers return a reply;
 * `send` is the only function that writes a response, and it writes at most
 * once per request, so no route can answer twice or throw into the server.
 * A handler that throws or rejects becomes a 500 with a JSON body. When the
 * client goes away first, the request's signal aborts the work tied to it.
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
  /** Close the connection after this answer (a body left unread, say). */
  close?: boolean;
}

export interface RequestContext {
  /** Aborted when the client disconnects before the answer is written. */
  signal: AbortSignal;
}

export type Handler = (req: IncomingMessage, url: URL, ctx: RequestContext) => Reply | Promise<Reply>;

export interface HttpServerOptions {
  /** The whole request (headers and body) must arrive within this. Default 10000. */
  requestTimeoutMs?: number;
  /** The headers must arrive within this. Default 5000. */
  headersTimeoutMs?: number;
  /** How often those two are enforced. Default 1000 (node's own default is 30000). */
  checkTimeoutsEveryMs?: number;
}

/** Called once per answered request; `route` is the registered path, or `other` (bounded label values). */
export type ResponseObserver = (route: string, status: number, durationMs: number) => void;

export class HttpServer {
  private readonly server: Server;
  private readonly routes = new Map<string, Handler>();
  private readonly paths = new Set<string>();
  private readonly observers: ResponseObserver[] = [];

  constructor(
    private readonly log: Logger,
    opts: HttpServerOptions = {},
  ) {
    // A slow client cannot hold a socket: headers within 5 s, the whole
    // request within 10 s, checked every second (node answers 408 and closes).
    this.server = createServer(
      {
        headersTimeout: opts.headersTimeoutMs ?? 5_000,
        requestTimeout: opts.requestTimeoutMs ?? 10_000,
        connectionsCheckingInterval: opts.checkTimeoutsEveryMs ?? 1_000,
        keepAliveTimeout: 5_000,
      },
      (req, res) => void this.handle(req, res),
    );
  }

  route(method: string, path: string, handler: Handler): this {
    this.routes.set(`${method} ${path}`, handler);
    this.paths.add(path);
    return this;
  }

  /** Observes every answer (metrics). An observer that throws is logged and ignored. */
  onResponse(observer: ResponseObserver): this {
    this.observers.push(observer);
    return this;
  }

  /** `backlog`: connections the kernel may queue before we accept them (a probe storm arrives at once). */
  async listen(host: string, port: number, backlog = 2048): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen({ port, host, backlog }, () => {
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
    const started = performance.now();
    const ac = new AbortController();
    // 'close' before the answer is finished: the client left (or the socket was destroyed).
    res.once('close', () => {
      if (!res.writableFinished) ac.abort(new Error('client disconnected'));
    });
    let route = 'other';
    let reply: Reply;
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (this.paths.has(url.pathname)) route = url.pathname;
      const handler = this.routes.get(`${req.method} ${url.pathname}`);
      if (handler) {
        reply = await handler(req, url, { signal: ac.signal });
      } else {
        const allowed = [...this.routes.keys()].filter((k) => k.endsWith(` ${url.pathname}`)).map((k) => k.split(' ')[0]!);
        reply = allowed.length
          ? { status: 405, body: { error: `${req.method} is not allowed on ${url.pathname}; use ${allowed.join(', ')}` }, headers: { allow: allowed.join(', ') } }
          : { status: 404, body: { error: `no route ${url.pathname}` } };
      }
    } catch (err) {
      this.log.error({ err, url: req.url }, 'http handler failed');
      reply = { status: 500, body: { error: `internal error: ${err instanceof Error ? err.message : String(err)}` } };
    }
    if (ac.signal.aborted) return; // nobody to answer
    if (!this.write(res, reply)) return;
    for (const observe of this.observers) {
      try {
        observe(route, reply.status, performance.now() - started);
      } catch (err) {
        this.log.warn({ err }, 'http response observer failed');
      }
    }
  }

  /** `send`, and if the reply itself cannot be written (a bad header), a plain 500; a last resort closes the socket. */
  private write(res: ServerResponse, reply: Reply): boolean {
    try {
      return send(res, reply);
    } catch (err) {
      this.log.error({ err, status: reply.status }, 'http reply could not be written');
      try {
        return send(res, { status: 500, body: { error: 'internal error: the reply could not be written' } });
      } catch {
        res.destroy();
        return false;
      }
    }
  }
}

/** Writes `reply` unless this response was already written or the client left. */
export function send(res: ServerResponse, reply: Reply): boolean {
  if (res.headersSent || res.writableEnded || res.destroyed || res.socket?.destroyed) return false;
  const body =
    reply.contentType !== undefined ? String(reply.body ?? '') : reply.body === undefined ? '' : JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    'content-type': reply.contentType ?? 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...reply.headers,
    ...(reply.close ? { connection: 'close' } : {}),
  });
  res.end(body);
  return true;
}
