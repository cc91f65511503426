/**
 * Turning one HTTP request into a valid ping, or into a readable 4xx: the
 * platform side of docs/PROTOCOL.md section 3 (same zod schema the daemon builds with).
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { formatIssues } from '../protocol/decode.js';
import { Ping, PROTOCOL_VERSION } from '../protocol/schemas.js';

export type Answer = { status: number; body: unknown; headers?: Record<string, string> };

export type PingParse = { ok: true; ping: Ping } | { ok: false; answer: Answer };

const fail = (status: number, error: string, extra: Record<string, unknown> = {}): PingParse => ({
  ok: false,
  answer: { status, body: { error, ...extra } },
});

/** True when no token is configured or the request carries one of them. */
export function authorized(req: IncomingMessage, tokens: readonly Buffer[]): boolean {
  if (tokens.length === 0) return true;
  const header = req.headers.authorization ?? '';
  if (!header.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice(7), 'utf8');
  return tokens.some((t) => t.length === given.length && timingSafeEqual(t, given));
}

export function parsePing(req: IncomingMessage, text: string): PingParse {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) {
    return fail(415, `content-type must be application/json, got ${JSON.stringify(type)}`);
  }
  const key = req.headers['idempotency-key'];
  if (typeof key !== 'string' || key === '') return fail(400, 'missing idempotency-key header (it must equal batch.id)');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return fail(400, `body is not JSON: ${(err as Error).message}`);
  }
  const v = (value as { v?: unknown } | null)?.v;
  if (typeof value === 'object' && value !== null && v !== PROTOCOL_VERSION) {
    return fail(400, `v: version ${JSON.stringify(v)} is not supported (expected ${PROTOCOL_VERSION})`);
  }
  const parsed = Ping.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 20).map((i) => formatIssues([i]));
    return fail(400, `invalid ping: ${issues.slice(0, 5).join('; ')}`, { issues });
  }
  const problem = checkPing(parsed.data, key);
  if (problem !== undefined) return fail(400, `invalid ping: ${problem}`);
  return { ok: true, ping: parsed.data };
}

/** Rules the schema cannot say: the key is the batch id, parts are in range, no instance twice. */
function checkPing(ping: Ping, key: string): string | undefined {
  if (key !== ping.batch.id) return `idempotency-key ${JSON.stringify(key)} differs from batch.id ${JSON.stringify(ping.batch.id)}`;
  if (ping.batch.part > ping.batch.parts) return `batch.part ${ping.batch.part} is beyond batch.parts ${ping.batch.parts}`;
  const seen = new Set<string>();
  for (const [i, w] of ping.workers.entries()) {
    const id = `${w.worker}\u0000${w.instance}`;
    if (seen.has(id)) return `workers.${i}: instance ${w.instance} of ${w.worker} is listed twice`;
    seen.add(id);
  }
  return undefined;
}

/** The request body as text, whether a framework parsed it already or not; undefined when it passes `max` bytes. */
export async function readBody(req: IncomingMessage, max: number): Promise<{ text: string } | { tooLarge: number }> {
  const parsed = (req as { body?: unknown }).body;
  if (Buffer.isBuffer(parsed)) return parsed.length > max ? { tooLarge: parsed.length } : { text: parsed.toString('utf8') };
  if (typeof parsed === 'string') return { text: parsed };
  if (parsed !== undefined && parsed !== null && typeof parsed === 'object') return { text: JSON.stringify(parsed) };
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= max) chunks.push(chunk);
  }
  return size > max ? { tooLarge: size } : { text: Buffer.concat(chunks).toString('utf8') };
}
