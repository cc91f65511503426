/**
 * POSTs one ping part to the platform and classifies the answer per
 * docs/PROTOCOL.md section 3. Every request is aborted when its timeout passes,
 * including a platform that sends headers and then stalls the body.
 */
import { parseRetryAfter } from '../core/pacer.js';
import { PlatformAnswer } from '../protocol/schemas.js';
import { redactUrl } from '../util/redact-url.js';
import { post, PostError } from './http-post.js';

/** `resync`: a 409 (contract 1.1), the platform wants a full ping at once; not a failure. */
export type SendOutcome = 'accepted' | 'resync' | 'throttled' | 'too_large' | 'rejected' | 'failed';

export interface SendResult {
  outcome: SendOutcome;
  status?: number;
  retryAfterMs?: number;
  nextIntervalMs?: number;
  /** contract 1.1, from a 2xx body: `delta` offers delta pings, `resync` asks for a full one. */
  delta?: boolean;
  resync?: boolean;
  /** Why it failed, for logs: the error, or the status and the start of the body. */
  error?: string;
  /** The connection was refused: the request reached no application (the pacer retries these sooner). */
  unreachable?: boolean;
  /** A 3xx answer: where it pointed (absolute, redacted), or `(no Location header)`. Never followed. */
  redirect?: string;
  durationMs: number;
}

export interface PlatformClientOptions {
  url: string;
  token?: string;
  timeoutMs: number;
  userAgent: string;
}

const MAX_BODY_LOGGED = 512;
const MAX_BODY_READ = 64 * 1024;

export class PlatformClient {
  /** The query string, password and user of the URL, as they may appear in text. */
  private readonly urlSecrets: string[];
  private readonly url: URL;

  constructor(private readonly opts: PlatformClientOptions) {
    this.url = new URL(opts.url);
    // node:http would turn userinfo into a Basic header; the config refuses it, and so does this client.
    this.url.username = '';
    this.url.password = '';
    let secrets: string[] = [];
    try {
      const u = new URL(opts.url);
      secrets = [u.search.slice(1), safeDecode(u.search.slice(1)), u.password, u.username];
    } catch {
      // The config accepts only parseable URLs; a bad one here has nothing to hide.
    }
    this.urlSecrets = secrets.filter((p) => p.length >= 4);
  }

  /** Sends `body`; `abort` cuts it short (shutdown). Never throws. */
  async send(body: string, idempotencyKey: string, abort?: AbortSignal): Promise<SendResult> {
    const started = performance.now();
    const timeout = AbortSignal.timeout(this.opts.timeoutMs);
    const signal = abort ? AbortSignal.any([timeout, abort]) : timeout;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'idempotency-key': idempotencyKey,
      'user-agent': this.opts.userAgent,
    };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    try {
      // Never followed (node:http does not): following turns a 301/302/303 into a bodiless GET (whose
      // 200 would read as an acceptance), chases a 307 loop with the full body, and would carry worker
      // meta and the token to whatever origin the Location names.
      const res = await post(this.url, body, { headers, signal, maxBodyBytes: MAX_BODY_READ });
      const durationMs = performance.now() - started;
      const result: SendResult = { ...classify(res.status, header(res.headers['retry-after']), res.text), status: res.status, durationMs };
      if (res.status >= 300 && res.status < 400) result.redirect = this.location(header(res.headers.location));
      // A platform that echoes the request (say, in a 401 body) must not put our token in a log line.
      if (result.error !== undefined) result.error = this.scrub(result.error);
      return result;
    } catch (err) {
      const durationMs = performance.now() - started;
      const reason = timeout.aborted
        ? `no answer within ${this.opts.timeoutMs} ms`
        : abort?.aborted
          ? 'aborted by shutdown'
          : describeNetworkError(err);
      const unreachable = err instanceof PostError && err.code === 'ECONNREFUSED';
      // Network errors may quote what they refused: a header value (the token) or the URL.
      return { outcome: 'failed', error: this.scrub(reason), durationMs, ...(unreachable ? { unreachable } : {}) };
    }
  }

  /** The platform URL as logs may show it. */
  get printableUrl(): string {
    return redactUrl(this.opts.url);
  }

  /** Removes the token (whole, and each line of it) and the URL's secrets from text bound for a log. */
  private scrub(text: string): string {
    let out = text;
    const token = this.opts.token;
    if (token) {
      const pieces = [token, ...token.split(/[\r\n]+/)].filter((p) => p.length >= 4);
      for (const piece of pieces) out = out.split(piece).join('[redacted]');
    }
    if (this.opts.url !== this.printableUrl) out = out.split(this.opts.url).join(this.printableUrl);
    // Pieces too: a platform may echo the request line (`POST /hb?api_key=...`).
    for (const piece of this.urlSecrets) out = out.split(piece).join('[redacted]');
    return out;
  }

  private location(value: string | null): string {
    if (value === null || value.trim() === '') return '(no Location header)';
    try {
      return redactUrl(new URL(value, this.opts.url).toString());
    } catch {
      return redactUrl(value);
    }
  }
}

function classify(status: number, retryAfter: string | null, text: string): Omit<SendResult, 'durationMs'> {
  if (status >= 200 && status < 300) {
    const out: Omit<SendResult, 'durationMs'> = { outcome: 'accepted' };
    if (text.trim().startsWith('{')) {
      try {
        const parsed = PlatformAnswer.safeParse(JSON.parse(text));
        if (parsed.success) {
          const a = parsed.data;
          if (a.next_interval_ms !== undefined) out.nextIntervalMs = a.next_interval_ms;
          if (a.delta !== undefined) out.delta = a.delta;
          if (a.resync !== undefined) out.resync = a.resync;
        }
      } catch {
        // A 2xx with an unreadable body is still an acceptance.
      }
    }
    return out;
  }
  const error = `HTTP ${status}: ${text.slice(0, MAX_BODY_LOGGED)}`;
  if (status === 409) return { outcome: 'resync', error };
  if (status === 429 || status === 503) {
    const retryAfterMs = parseRetryAfter(retryAfter, Date.now());
    return retryAfterMs === undefined ? { outcome: 'throttled', error } : { outcome: 'throttled', retryAfterMs, error };
  }
  if (status === 413) return { outcome: 'too_large', error };
  // A redirect is never an acceptance: the ping reached no one who took it.
  if (status >= 300 && status < 400) return { outcome: 'failed', error };
  if (status >= 400 && status < 500) return { outcome: 'rejected', error };
  return { outcome: 'failed', error };
}

function describeNetworkError(err: unknown): string {
  if (err instanceof PostError) return err.code && !err.message.includes(err.code) ? `${err.message} (${err.code})` : err.message;
  return err instanceof Error ? err.message : String(err);
}

function header(value: string | string[] | undefined): string | null {
  return typeof value === 'string' ? value : null;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
