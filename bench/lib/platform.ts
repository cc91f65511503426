/**
 * The platform side of the bench: the shared real HTTP stub (testing/), with a
 * responder that keeps a small summary of each request (time, bytes, batch
 * fields, entry states) instead of every body, so a long run at 10k workers
 * stays small. A hook sees each parsed body for latency measurements.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { startPlatformStub } from '../../testing/index.js';

export interface PingEntry {
  worker: string;
  state: string;
}

export interface PingBody {
  batch?: { seq: number; part: number; parts: number; final: boolean };
  workers?: PingEntry[];
}

export interface RequestRecord {
  at: number;
  bodyBytes: number;
  /** Request line and headers as sent on the wire (HTTP/1.1). */
  headBytes: number;
  seq: number;
  part: number;
  parts: number;
  final: boolean;
  entries: number;
  states: Record<string, number>;
}

export interface BenchPlatform {
  readonly url: string;
  readonly requests: RequestRecord[];
  /** Answer 200 (false) or never answer (true). */
  hang(on: boolean): void;
  onPing(hook: ((body: PingBody, at: number) => void) | undefined): void;
  close(): Promise<void>;
}

export function headBytes(method: string, path: string, headers: IncomingHttpHeaders): number {
  let n = `${method} ${path} HTTP/1.1\r\n`.length + 2;
  for (const [k, v] of Object.entries(headers)) {
    for (const value of Array.isArray(v) ? v : [v ?? '']) n += k.length + 2 + Buffer.byteLength(value) + 2;
  }
  return n;
}

export async function startBenchPlatform(): Promise<BenchPlatform> {
  const stub = await startPlatformStub();
  const requests: RequestRecord[] = [];
  let hanging = false;
  let hook: ((body: PingBody, at: number) => void) | undefined;
  stub.respondWith((req) => {
    const body = (typeof req.body === 'object' && req.body !== null ? req.body : {}) as PingBody;
    const states: Record<string, number> = {};
    for (const w of body.workers ?? []) states[w.state] = (states[w.state] ?? 0) + 1;
    requests.push({
      at: req.receivedAt,
      bodyBytes: Buffer.byteLength(req.rawBody),
      headBytes: headBytes(req.method, req.path, req.headers),
      seq: body.batch?.seq ?? -1,
      part: body.batch?.part ?? 1,
      parts: body.batch?.parts ?? 1,
      final: body.batch?.final ?? false,
      entries: body.workers?.length ?? 0,
      states,
    });
    hook?.(body, req.receivedAt);
    stub.clear();
    return hanging ? { hang: true } : { status: 200, body: {} };
  });
  return {
    url: stub.url,
    requests,
    hang: (on) => {
      hanging = on;
    },
    onPing: (h) => {
      hook = h;
    },
    close: () => stub.close(),
  };
}
