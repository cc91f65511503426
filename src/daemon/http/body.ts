/**
 * Request bodies and credentials for the POST routes. Everything is checked
 * before the body is buffered: the token, the content type, the declared
 * length; then the body is read with the limit enforced while reading. A
 * refused body is answered with a readable error (what, where, why) and,
 * when it was too large, the connection is closed instead of read further.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Reply } from './server.js';
import { jsonErrorOffset } from './json-position.js';

export type BodyRefusal = 'unauthorized' | 'unsupported_media_type' | 'too_large' | 'invalid_json' | 'aborted';

export type ParsedBody =
  | { ok: true; value: unknown; bytes: number }
  | { ok: false; why: BodyRefusal; reply: Reply };

/** 401 unless `authorization: Bearer <token>` matches (compared in constant time). Undefined when allowed. */
export function checkBearer(req: IncomingMessage, token: string | undefined): Reply | undefined {
  if (token === undefined || token === '') return undefined;
  const header = req.headers.authorization;
  const challenge = { 'www-authenticate': 'Bearer realm="hbagg"' };
  if (header === undefined) {
    return { status: 401, body: { error: 'authorization required: send "authorization: Bearer <http.token>"' }, headers: challenge };
  }
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  if (!m || !sameSecret(m[1]!, token)) {
    return {
      status: 401,
      body: { error: 'authorization refused: the bearer token does not match http.token' },
      headers: { 'www-authenticate': 'Bearer realm="hbagg", error="invalid_token"' },
    };
  }
  return undefined;
}

/** Constant time whatever the lengths: both sides are hashed to 32 bytes first. */
function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Reads a JSON body of at most `maxBytes`; never rejects. */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<ParsedBody> {
  const type = checkContentType(req.headers['content-type']);
  if (type) return { ok: false, why: 'unsupported_media_type', reply: type };

  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) {
    return { ok: false, why: 'too_large', reply: tooLarge(req, `content-length is ${declared} bytes`, maxBytes) };
  }

  const read = await collect(req, maxBytes);
  if (read.kind === 'too_large') {
    return { ok: false, why: 'too_large', reply: tooLarge(req, `the body passed ${maxBytes} bytes while being read`, maxBytes) };
  }
  if (read.kind === 'aborted') {
    return { ok: false, why: 'aborted', reply: { status: 400, body: { error: 'the request body was cut off before its end' }, close: true } };
  }

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(read.body);
  } catch {
    return invalid('body is not valid UTF-8 text; send JSON encoded as UTF-8');
  }
  if (text.trim() === '') return invalid('body is empty; expected a JSON document');
  try {
    return { ok: true, value: JSON.parse(text) as unknown, bytes: read.body.byteLength };
  } catch (err) {
    return invalid(`body is not valid JSON: ${describeJsonError(text, err as Error)}`);
  }
}

function checkContentType(header: string | undefined): Reply | undefined {
  const expected = 'send "content-type: application/json"';
  if (header === undefined) return { status: 415, body: { error: `content-type is missing; ${expected}` }, headers: { accept: 'application/json' } };
  const [media, ...params] = header.split(';').map((s) => s.trim().toLowerCase());
  if (media !== 'application/json') {
    return { status: 415, body: { error: `content-type "${header.slice(0, 100)}" is not supported; ${expected}` }, headers: { accept: 'application/json' } };
  }
  const charset = params.find((p) => p.startsWith('charset='))?.slice('charset='.length).replace(/"/g, '');
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    return { status: 415, body: { error: `charset "${charset.slice(0, 40)}" is not supported; JSON must be UTF-8` }, headers: { accept: 'application/json' } };
  }
  return undefined;
}

function tooLarge(req: IncomingMessage, what: string, maxBytes: number): Reply {
  // Discard (never buffer) whatever is still arriving, so the socket is not
  // reset under the answer; `close` ends the connection once it is sent.
  req.resume();
  return { status: 413, body: { error: `body too large: ${what}; the limit is ${maxBytes} bytes` }, close: true };
}

function invalid(error: string): ParsedBody {
  return { ok: false, why: 'invalid_json', reply: { status: 400, body: { error } } };
}

type Collected = { kind: 'ok'; body: Buffer } | { kind: 'too_large' } | { kind: 'aborted' };

/** Buffers at most `maxBytes`; stops collecting (and pauses) as soon as the limit is passed. */
function collect(req: IncomingMessage, maxBytes: number): Promise<Collected> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (result: Collected) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onClose);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > maxBytes) {
        req.pause();
        finish({ kind: 'too_large' });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish({ kind: 'ok', body: Buffer.concat(chunks, size) });
    const onAbort = () => finish({ kind: 'aborted' });
    const onClose = () => {
      if (!req.complete) finish({ kind: 'aborted' });
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onAbort);
    req.once('close', onClose);
  });
}

/** "Unexpected token ... (line 3, column 7, near `"seq": ,`)": what, where, and the text around it. */
export function describeJsonError(text: string, err: Error): string {
  // V8 quotes a snippet of the body in some messages; the location below says it better.
  const msg = err.message
    .replace(/, (?:\.\.\.)?".*"(?:\.\.\.)? is not valid JSON$/s, '')
    .replace(/ in JSON at position \d+.*$/s, '')
    .replace(/\s+/g, ' ')
    .slice(0, 200);
  const pos = jsonErrorOffset(text);
  if (pos === undefined) return msg;
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - before.lastIndexOf('\n');
  const near = text.slice(Math.max(0, pos - 20), pos + 20).replace(/\s+/g, ' ');
  return `${msg} (line ${line}, column ${column}, near \`${near}\`)`;
}
