/**
 * Reading OpenCTI's answers. Pure: an HTTP status and body in, one verdict
 * for the request and one per alias out.
 *
 * GraphQL reports errors in the body, usually with HTTP 200: each error of
 * an executed document names the alias it belongs to in `path[0]`, and the
 * other aliases still carry their data. A document that fails validation
 * (Apollo answers 400 or 200) has no `data`: one of those is graphql-no-alias
 * saying "... has been exceeded (max: N)", which tells us the limit.
 */

export type AliasVerdict =
  | { kind: 'ok'; state: string | null }
  /** The platform has no connector with this id (pingConnector's error, or connector(id) answering null). */
  | { kind: 'unknown'; message: string }
  /** Any other error for this alias (no capability, bad input): the connector backs off. */
  | { kind: 'rejected'; message: string };

export type Verdict =
  | { kind: 'answered'; aliases: Map<string, AliasVerdict> }
  | { kind: 'alias_limit'; max: number; message: string }
  /** 429 or 503: wait (Retry-After when given). */
  | { kind: 'throttled'; message: string }
  /** 413: fewer aliases per document. */
  | { kind: 'too_large'; message: string }
  /** The request as a whole was refused (other 4xx, a document error): back off, the connectors stay due. */
  | { kind: 'rejected'; message: string }
  /** 5xx, or an answer that is not GraphQL: back off and retry. */
  | { kind: 'failed'; message: string };

const MAX_MESSAGE = 300;
const ALIAS_LIMIT = /exceeded \(max: (\d+)\)/;
const UNKNOWN = /no connector found/i;

interface GraphqlError {
  message?: unknown;
  path?: unknown;
}

export function readAnswer(status: number, text: string, aliases: readonly string[]): Verdict {
  const snippet = () => `HTTP ${status}: ${text.slice(0, MAX_MESSAGE)}`;
  if (status === 429 || status === 503) return { kind: 'throttled', message: snippet() };
  if (status === 413) return { kind: 'too_large', message: snippet() };
  if (status >= 500) return { kind: 'failed', message: snippet() };
  let body: { data?: unknown; errors?: unknown };
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    body = parsed as typeof body;
  } catch {
    return status >= 400 ? { kind: 'rejected', message: snippet() } : { kind: 'failed', message: `not a GraphQL answer: ${snippet()}` };
  }
  const errors: GraphqlError[] = Array.isArray(body.errors) ? (body.errors as GraphqlError[]) : [];
  const messageOf = (e: GraphqlError) => String(e.message ?? 'unknown error').slice(0, MAX_MESSAGE);
  for (const e of errors) {
    const m = ALIAS_LIMIT.exec(messageOf(e));
    if (m) return { kind: 'alias_limit', max: Math.max(1, Number(m[1])), message: messageOf(e) };
  }
  const data = typeof body.data === 'object' && body.data !== null ? (body.data as Record<string, unknown>) : undefined;
  if (data === undefined) {
    // No data at all: the document was not executed (validation, authentication before execution).
    const first = errors[0];
    const message = first ? messageOf(first) : snippet();
    return status >= 400 || first ? { kind: 'rejected', message } : { kind: 'failed', message };
  }
  const byAlias = new Map<string, GraphqlError>();
  for (const e of errors) {
    const head = Array.isArray(e.path) ? e.path[0] : undefined;
    if (typeof head === 'string' && !byAlias.has(head)) byAlias.set(head, e);
  }
  const verdicts = new Map<string, AliasVerdict>();
  for (const a of aliases) {
    const err = byAlias.get(a);
    const value = data[a];
    if (err !== undefined) {
      const message = messageOf(err);
      verdicts.set(a, UNKNOWN.test(message) ? { kind: 'unknown', message } : { kind: 'rejected', message });
    } else if (value === null || value === undefined) {
      verdicts.set(a, { kind: 'unknown', message: 'the platform answered null for this connector' });
    } else {
      const state = (value as { connector_state?: unknown }).connector_state;
      verdicts.set(a, { kind: 'ok', state: typeof state === 'string' ? state : null });
    }
  }
  return { kind: 'answered', aliases: verdicts };
}
