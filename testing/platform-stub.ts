import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { waitFor } from './wait-for.js';

export interface RecordedPing {
  /** Date.now() when the request arrived (headers read). */
  receivedAt: number;
  method: string;
  /** Path and query, e.g. `/v1/heartbeats`. */
  path: string;
  /** Lower-cased header names, as node:http gives them. */
  headers: IncomingHttpHeaders;
  /** The body parsed as JSON, or the raw text when it is not JSON. */
  body: unknown;
  rawBody: string;
  /** The status answered; undefined while the responder decides, and for a hung request. */
  status: number | undefined;
  /** True when the responder said `{hang: true}`. */
  hung: boolean;
}

export type StubAnswer =
  | { status: number; headers?: Record<string, string>; body?: unknown }
  | { hang: true };

/** `n` is the 1-based position of `req` in `requests` (so it restarts after clear()). */
export type StubResponder = (req: RecordedPing, n: number) => StubAnswer | Promise<StubAnswer>;

export interface PlatformStub {
  /** Where to POST pings: `http://127.0.0.1:PORT/v1/heartbeats` (the stub answers any path). */
  readonly url: string;
  readonly port: number;
  /** Every request received, in arrival order. */
  readonly requests: RecordedPing[];
  /** Program the answers; a fixed answer is also accepted. Default: 200 `{}`. */
  respondWith(responder: StubResponder | StubAnswer): void;
  /** Requests answered with a 2xx. */
  accepted(): RecordedPing[];
  /** Forget the recorded requests. */
  clear(): void;
  /** Wait until at least `n` requests are recorded and answered (or hung); returns the requests. */
  waitForRequests(n: number, timeoutMs?: number): Promise<RecordedPing[]>;
  /** Destroy every connection (releasing hung requests) and stop listening. Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_ANSWER: StubAnswer = { status: 200, body: {} };

/** A real HTTP server on a free 127.0.0.1 port that imitates the platform (docs/PROTOCOL.md section 3). */
export async function startPlatformStub(): Promise<PlatformStub> {
  const requests: RecordedPing[] = [];
  const sockets = new Set<Socket>();
  let responder: StubResponder = () => DEFAULT_ANSWER;
  let closing: Promise<void> | undefined;

  const server = http.createServer((req, res) => {
    void handle(req, res);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const receivedAt = Date.now();
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of req) chunks.push(chunk as Buffer);
    } catch {
      return; // the client went away mid-body
    }
    const rawBody = Buffer.concat(chunks).toString('utf8');
    const record: RecordedPing = {
      receivedAt,
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      body: parseBody(rawBody),
      rawBody,
      status: undefined,
      hung: false,
    };
    requests.push(record);

    let answer: StubAnswer;
    try {
      answer = await responder(record, requests.length);
    } catch (err) {
      answer = { status: 500, body: { error: `stub responder threw: ${String(err)}` } };
    }
    if ('hang' in answer) {
      record.hung = true;
      return; // the socket stays open until the client gives up or close()
    }
    record.status = answer.status;
    if (res.destroyed) return;
    const headers: Record<string, string> = { ...answer.headers };
    let payload = '';
    if (typeof answer.body === 'string') {
      payload = answer.body;
      if (!hasHeader(headers, 'content-type')) headers['content-type'] = 'text/plain; charset=utf-8';
    } else if (answer.body !== undefined) {
      payload = JSON.stringify(answer.body);
      if (!hasHeader(headers, 'content-type')) headers['content-type'] = 'application/json';
    }
    res.writeHead(answer.status, headers);
    res.end(payload);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1/heartbeats`,
    port,
    requests,
    respondWith(next) {
      responder = typeof next === 'function' ? next : () => next;
    },
    accepted: () => requests.filter((r) => r.status !== undefined && r.status >= 200 && r.status < 300),
    clear() {
      requests.splice(0);
    },
    async waitForRequests(n, timeoutMs = 5000) {
      await waitFor(
        () => requests.length >= n && requests.slice(0, n).every((r) => r.hung || r.status !== undefined),
        {
          timeoutMs,
          message: `platform stub expected ${n} answered request(s), has ${requests.length}`,
        },
      );
      return requests.slice();
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

function parseBody(raw: string): unknown {
  if (raw === '') return raw;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((key) => key.toLowerCase() === name);
}
