/**
 * What the client needs from NATS: two methods. A `NatsConnection` fits as
 * is; unit tests hand in a fake (as nats.js `heartbeats.ts` depends on a
 * 3-method interface, not on the connection).
 */

export interface BeatTransport {
  /** Fire and forget. May throw (closed connection); the client catches it. */
  publish(subject: string, payload: Uint8Array): void;
  /** One request, one reply; rejects on timeout or when nobody listens. */
  request(subject: string, payload: Uint8Array, opts: { timeout: number }): Promise<{ data: Uint8Array }>;
}
