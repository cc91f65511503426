/**
 * A raw HTTP/1.1 client over a TCP socket, for what fetch hides: how many
 * responses came back on one connection, whether the server closed it, and
 * bodies sent slowly, chunked, or cut off.
 */
import net from 'node:net';

export interface RawResponse {
  /** Status of the first response (0 if none arrived). */
  status: number;
  headers: Record<string, string>;
  body: string;
  /** ms from the connection attempt to the first complete response. */
  ms: number;
  /** Status lines seen on the connection in all: exactly 1 for a correct server. */
  responses: number;
  /** The server closed the connection (rather than our timeout ending it). */
  closedByServer: boolean;
  /** Socket errors seen (EPIPE/ECONNRESET while still writing are expected after a 413). */
  errors: string[];
}

export interface RawOptions {
  /** Give up (and destroy the socket) after this. Default 5000. */
  timeoutMs?: number;
  /** After the first response, wait this long for the server to close or send more. Default: until close or timeout. */
  lingerMs?: number;
  /** Writes the request; default writes `request` at once. */
  write?: (socket: net.Socket) => Promise<void> | void;
}

export function rawRequest(port: number, request: string | Buffer, opts: RawOptions = {}): Promise<RawResponse> {
  const { timeoutMs = 5000, lingerMs } = opts;
  return new Promise((resolve) => {
    const start = performance.now();
    const socket = net.connect({ port, host: '127.0.0.1' });
    let received = Buffer.alloc(0);
    let first: Omit<RawResponse, 'responses' | 'closedByServer' | 'errors'> | undefined;
    const errors: string[] = [];
    let settled = false;
    let linger: NodeJS.Timeout | undefined;

    const finish = (closedByServer: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(linger);
      socket.destroy();
      const text = received.toString('latin1');
      const responses = (text.match(/(?:^|\r\n)HTTP\/1\.[01] \d{3} /g) ?? []).length;
      resolve({ ...(first ?? { status: 0, headers: {}, body: '', ms: performance.now() - start }), responses, closedByServer, errors });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);

    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (!first) {
        first = parseFirst(received, start);
        if (first && lingerMs !== undefined) linger = setTimeout(() => finish(false), lingerMs);
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => errors.push(err.code ?? err.message));
    socket.on('close', () => finish(true));
    socket.once('connect', () => {
      void (async () => {
        try {
          if (opts.write) await opts.write(socket);
          else socket.write(request);
        } catch (err) {
          errors.push((err as Error).message);
        }
      })();
    });
  });
}

function parseFirst(buf: Buffer, start: number): Omit<RawResponse, 'responses' | 'closedByServer' | 'errors'> | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const length = Number(headers['content-length'] ?? 0);
  if (buf.length < end + 4 + length) return undefined;
  return {
    status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0),
    headers,
    body: buf.subarray(end + 4, end + 4 + length).toString('utf8'),
    ms: performance.now() - start,
  };
}

/** A GET that asks the server to close after answering. */
export function get(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`;
}

/** Writes `data` and resolves once it is flushed (or the socket failed). */
export function writeAll(socket: net.Socket, data: string | Buffer): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    socket.write(data, () => resolve());
  });
}
