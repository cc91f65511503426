/**
 * The Leave request/reply (docs/PROTOCOL.md section 1) with a hard bound: it
 * resolves within `timeoutMs` whatever NATS does, and never rejects. One
 * retry when nobody listens yet (a daemon restarting), inside the same budget.
 */
import { LeaveReply, type Leave, type LeavePhase } from '../protocol/schemas.js';
import { within } from '../util/deadline.js';
import { errorText, type ClientLogger } from './logger.js';
import { delay, type Scheduler } from './scheduler.js';
import type { BeatTransport } from './transport.js';

export type LeaveFailureCause = 'timeout' | 'no_responders' | 'not_connected' | 'refused' | 'bad_reply' | 'error';

/** The daemon's acknowledgement: suppression of this instance is in effect. */
export type LeaveAck = { ok: true; worker: string; instance: string; state: LeavePhase };

/** Why the announcement did not get an acknowledgement; `error` reads as a sentence. */
export type LeaveFailure = { ok: false; error: string; cause: LeaveFailureCause };

export type LeaveResult = LeaveAck | LeaveFailure;

export interface LeaveRequestDeps {
  transport: BeatTransport | undefined;
  scheduler: Scheduler;
  log: ClientLogger;
}

const MAX_ATTEMPTS = 2;
const NO_RESPONDERS_PAUSE_MS = 200;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

type Outcome = { kind: 'reply'; data: Uint8Array } | { kind: 'timeout' } | { kind: 'error'; err: unknown };

export async function requestLeave(
  deps: LeaveRequestDeps,
  subject: string,
  leave: Leave,
  timeoutMs: number,
): Promise<LeaveResult> {
  const { transport, scheduler, log } = deps;
  if (!transport) return { ok: false, cause: 'not_connected', error: 'not connected to NATS' };
  const payload = encoder.encode(JSON.stringify(leave));
  const deadline = scheduler.now() + timeoutMs;
  let last: LeaveFailure = { ok: false, cause: 'timeout', error: `no daemon answered within ${timeoutMs} ms` };
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const remaining = deadline - scheduler.now();
    if (remaining < 1) break;
    const outcome = await once(transport, scheduler, subject, payload, remaining);
    if (outcome.kind === 'reply') return parseReply(outcome.data);
    if (outcome.kind === 'timeout' || isTimeout(outcome.err)) {
      return { ok: false, cause: 'timeout', error: `no daemon answered within ${timeoutMs} ms` };
    }
    if (!isNoResponders(outcome.err)) {
      return { ok: false, cause: 'error', error: `leave request failed: ${errorText(outcome.err)}` };
    }
    last = { ok: false, cause: 'no_responders', error: `no daemon is listening on ${subject}` };
    if (attempt < MAX_ATTEMPTS) {
      log.debug({ subject, attempt }, 'no daemon listening for the leave yet; retrying once');
      await delay(scheduler, Math.min(NO_RESPONDERS_PAUSE_MS, (deadline - scheduler.now()) / 2));
    }
  }
  return last;
}

/** One request raced against our own timer, so a transport that never settles cannot hold us. */
async function once(
  transport: BeatTransport,
  scheduler: Scheduler,
  subject: string,
  payload: Uint8Array,
  ms: number,
): Promise<Outcome> {
  try {
    const answered = transport.request(subject, payload, { timeout: Math.ceil(ms) }).then(
      (msg): Outcome => ({ kind: 'reply', data: msg.data }),
      (err: unknown): Outcome => ({ kind: 'error', err }),
    );
    return (await within(answered, ms, scheduler))?.value ?? { kind: 'timeout' };
  } catch (err) {
    return { kind: 'error', err };
  }
}

function parseReply(data: Uint8Array): LeaveResult {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(data));
  } catch {
    return { ok: false, cause: 'bad_reply', error: 'the daemon answered with something that is not JSON' };
  }
  const reply = LeaveReply.safeParse(value);
  if (!reply.success) return { ok: false, cause: 'bad_reply', error: 'the daemon answered with an unexpected reply' };
  if (!reply.data.ok) return { ok: false, cause: 'refused', error: `the daemon refused the leave: ${reply.data.error}` };
  return reply.data;
}

function isTimeout(err: unknown): boolean {
  return err instanceof Error && err.name === 'TimeoutError';
}

/** nats.js wraps NoRespondersError in a RequestError; accept either shape. */
function isNoResponders(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'NoResponders') return true;
  return err.cause instanceof Error && err.cause.name === 'NoResponders';
}
