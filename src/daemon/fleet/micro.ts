/**
 * The NATS micro protocol (io.nats.micro.v1), the three verbs and stats, on
 * our own 3.x connection. Written here rather than taken from
 * `@nats-io/services@3.0.0-25`: that prerelease pins its own nats-core
 * (3.0.0-50), whose `NatsConnection` type our transport-node 3.4 connection
 * does not satisfy (its `Match` enum against our string union), so it could
 * only be used through a double cast, with a second nats-core at run time.
 *
 * - `$SRV.<VERB>`, `$SRV.<VERB>.<name>`, `$SRV.<VERB>.<name>.<id>` for PING,
 *   INFO and STATS, answered by every instance (no queue group);
 * - each endpoint in queue group `q`, as micro services do by default;
 * - an error reply carries the `Nats-Service-Error` and
 *   `Nats-Service-Error-Code` headers, and counts in the endpoint's stats.
 */
import { headers, nuid, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';

export const MICRO_QUEUE = 'q';
const VERBS = ['PING', 'INFO', 'STATS'] as const;
type Verb = (typeof VERBS)[number];

export interface MicroConfig {
  name: string;
  version: string;
  description?: string;
  /** String values only, as the protocol requires. */
  metadata: Record<string, string>;
}

/** What an endpoint handler returns: a JSON body, or an error (counted). */
export type EndpointReply = { ok: true; body: unknown } | { ok: false; code: number; error: string };

export interface EndpointRequest {
  data: Uint8Array;
  headers: MsgHdrs | undefined;
}

export interface EndpointSpec {
  name: string;
  subject: string;
  handler: (req: EndpointRequest) => EndpointReply | Promise<EndpointReply>;
}

interface EndpointStats {
  num_requests: number;
  num_errors: number;
  last_error: string;
  /** Nanoseconds, as the protocol has it. */
  processing_time: number;
}

const encoder = new TextEncoder();

export class MicroService {
  readonly id = nuid.next();
  private readonly started = new Date().toISOString();
  private readonly subs: Subscription[] = [];
  private readonly stats = new Map<string, EndpointStats>();
  private stopped = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly cfg: MicroConfig,
    private readonly endpoints: readonly EndpointSpec[],
  ) {
    for (const e of endpoints) this.stats.set(e.name, { num_requests: 0, num_errors: 0, last_error: '', processing_time: 0 });
    for (const verb of VERBS) {
      for (const subject of [`$SRV.${verb}`, `$SRV.${verb}.${cfg.name}`, `$SRV.${verb}.${cfg.name}.${this.id}`]) {
        this.subs.push(nc.subscribe(subject, { callback: (err, msg) => {
          if (!err) this.answer(verb, msg);
        } }));
      }
    }
    for (const e of endpoints) {
      this.subs.push(nc.subscribe(e.subject, { queue: MICRO_QUEUE, callback: (err, msg) => {
        if (!err) void this.serve(e, msg);
      } }));
    }
  }

  /** Round trip to the server: the subscriptions are in place once this resolves. */
  async ready(): Promise<void> {
    await this.nc.flush();
  }

  /** Unsubscribes everything; safe to call twice. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const s of this.subs) s.unsubscribe();
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  private identity(type: string) {
    const { name, version, metadata } = this.cfg;
    return { type: `io.nats.micro.v1.${type}`, name, id: this.id, version, metadata };
  }

  pingResponse() {
    return this.identity('ping_response');
  }

  infoResponse() {
    return {
      ...this.identity('info_response'),
      description: this.cfg.description ?? '',
      endpoints: this.endpoints.map((e) => ({ name: e.name, subject: e.subject, queue_group: MICRO_QUEUE })),
    };
  }

  statsResponse() {
    return {
      ...this.identity('stats_response'),
      started: this.started,
      endpoints: this.endpoints.map((e) => {
        const s = this.stats.get(e.name) ?? { num_requests: 0, num_errors: 0, last_error: '', processing_time: 0 };
        return {
          name: e.name,
          subject: e.subject,
          queue_group: MICRO_QUEUE,
          ...s,
          average_processing_time: s.num_requests > 0 ? Math.round(s.processing_time / s.num_requests) : 0,
        };
      }),
    };
  }

  private answer(verb: Verb, msg: Msg): void {
    const body = verb === 'PING' ? this.pingResponse() : verb === 'INFO' ? this.infoResponse() : this.statsResponse();
    msg.respond(encoder.encode(JSON.stringify(body)));
  }

  private async serve(e: EndpointSpec, msg: Msg): Promise<void> {
    const s = this.stats.get(e.name);
    const start = process.hrtime.bigint();
    let reply: EndpointReply;
    try {
      reply = await e.handler({ data: msg.data, headers: msg.headers });
    } catch (err) {
      reply = { ok: false, code: 500, error: `internal error: ${(err as Error).message}` };
    }
    if (s) {
      s.num_requests++;
      s.processing_time += Number(process.hrtime.bigint() - start);
      if (!reply.ok) {
        s.num_errors++;
        s.last_error = `${reply.code}:${reply.error}`;
      }
    }
    if (!msg.reply || this.stopped) return;
    if (reply.ok) {
      msg.respond(encoder.encode(JSON.stringify(reply.body)));
      return;
    }
    const h = headers();
    h.set('Nats-Service-Error', reply.error);
    h.set('Nats-Service-Error-Code', String(reply.code));
    // The body says it too, for clients that do not read headers.
    msg.respond(encoder.encode(JSON.stringify({ error: reply.error, code: reply.code })), { headers: h });
  }
}
