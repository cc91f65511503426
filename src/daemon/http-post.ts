/**
 * One HTTP(S) POST on node:http, for the platform client. Not `fetch`: the
 * first fetch loads undici and compiles its WASM parser, which took an idle
 * daemon from about 66 to 82 MB RSS (BENCHMARKS.md, idle); node:http costs a
 * few MB. It also never follows a redirect (a 3xx is an answer like any
 * other), reuses connections (keep-alive), and reads at most `maxBodyBytes`
 * of the answer.
 */
import http from 'node:http';
import https from 'node:https';

export interface PostAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body as text, cut at `maxBodyBytes`. */
  text: string;
}

export interface PostOptions {
  headers: Record<string, string>;
  /** Aborts the request, the body included (a timeout, or shutdown). */
  signal: AbortSignal;
  maxBodyBytes: number;
}

/** An error with the network code (`ECONNREFUSED`, ...) of the failure, when there is one. */
export class PostError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'PostError';
  }
}

// An idle connection is closed after 4 s (as undici does), before the usual 5 s of servers: reusing
// one the server is closing at that moment loses the answer to a ping the platform may have applied.
const AGENT = { keepAlive: true, maxSockets: 4, timeout: 4_000 };
const agents = { 'http:': new http.Agent(AGENT), 'https:': new https.Agent(AGENT) };

export function post(url: URL, body: string, o: PostOptions): Promise<PostAnswer> {
  const mod = url.protocol === 'https:' ? https : http;
  const agent = url.protocol === 'https:' ? agents['https:'] : agents['http:'];
  return new Promise<PostAnswer>((resolve, reject) => {
    const fail = (err: unknown) => {
      const e = err as NodeJS.ErrnoException;
      reject(new PostError(e.message ?? String(err), e.code));
    };
    const req = mod.request(
      url,
      {
        method: 'POST',
        agent,
        signal: o.signal,
        headers: { ...o.headers, 'content-length': String(Buffer.byteLength(body)) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        let cut = false;
        res.on('data', (chunk: Buffer) => {
          if (cut) return;
          chunks.push(chunk);
          size += chunk.length;
          if (size >= o.maxBodyBytes) {
            // Enough to classify and log: drop the connection rather than read a huge body.
            cut = true;
            res.destroy();
            finish();
          }
        });
        const finish = () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8').slice(0, o.maxBodyBytes) });
        res.once('end', finish);
        res.once('error', (err) => (cut ? undefined : fail(err)));
        res.once('aborted', () => fail(new Error('the answer was cut short')));
      },
    );
    req.once('error', fail);
    req.end(body);
  });
}
