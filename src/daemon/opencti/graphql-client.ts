/**
 * POSTs GraphQL documents to `<platform.url>/graphql` the way the batched
 * ping's client does: node:http with keep-alive and no redirects
 * (http-post.ts), a timeout on every request (body included), Retry-After
 * read, the token kept out of every message. The pinger bounds how many
 * requests are in flight. Never throws.
 */
import { parseRetryAfter } from '../../core/pacer.js';
import { post, PostError } from '../http-post.js';
import type { GraphqlRequest } from './documents.js';

export interface GraphqlResponse {
  /** Absent when no HTTP answer came (timeout, connection error, abort). */
  status?: number;
  text: string;
  retryAfterMs?: number;
  /** Why no answer came. */
  error?: string;
  /** The connection was refused (nothing reached an application). */
  unreachable?: boolean;
  durationMs: number;
}

export interface GraphqlClientOptions {
  /** The OpenCTI base URL. */
  url: string;
  token?: string;
  timeoutMs: number;
  userAgent: string;
}

const MAX_BODY_READ = 1024 * 1024;

/** `<base>/graphql`, with or without a trailing slash on the base. */
export function graphqlEndpoint(base: string): string {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/graphql`;
  return url.toString();
}

export class GraphqlClient {
  readonly endpoint: string;
  private readonly url: URL;

  constructor(private readonly opts: GraphqlClientOptions) {
    this.endpoint = graphqlEndpoint(opts.url);
    this.url = new URL(this.endpoint);
  }

  async post(request: GraphqlRequest, abort?: AbortSignal): Promise<GraphqlResponse> {
    const started = performance.now();
    const timeout = AbortSignal.timeout(this.opts.timeoutMs);
    const signal = abort ? AbortSignal.any([timeout, abort]) : timeout;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
      'user-agent': this.opts.userAgent,
    };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    try {
      const res = await post(this.url, JSON.stringify(request), { headers, signal, maxBodyBytes: MAX_BODY_READ });
      const text = this.redact(res.text);
      const retry = res.headers['retry-after'];
      const retryAfterMs = parseRetryAfter(typeof retry === 'string' ? retry : null, Date.now());
      const out: GraphqlResponse = { status: res.status, text, durationMs: performance.now() - started };
      if (retryAfterMs !== undefined) out.retryAfterMs = retryAfterMs;
      return out;
    } catch (err) {
      const error = timeout.aborted
        ? `no answer within ${this.opts.timeoutMs} ms`
        : abort?.aborted ? 'aborted by shutdown' : describe(err);
      const unreachable = err instanceof PostError && err.code === 'ECONNREFUSED';
      return { text: '', error: this.redact(error), durationMs: performance.now() - started, ...(unreachable ? { unreachable } : {}) };
    }
  }

  /** A platform that echoes the request (say, in an error) must not put our token in a log line. */
  private redact(text: string): string {
    return this.opts.token ? text.split(this.opts.token).join('[redacted]') : text;
  }
}

function describe(err: unknown): string {
  if (err instanceof PostError) return err.code && !err.message.includes(err.code) ? `${err.message} (${err.code})` : err.message;
  return err instanceof Error ? err.message : String(err);
}
