/**
 * An OpenCTI platform stub: a real HTTP server answering `POST /graphql` with
 * the `graphql` package, from the connector part of OpenCTI's schema
 * (test/fixtures/opencti/connector-subset.graphql). Every document is
 * validated with the standard rules plus graphql-no-alias configured as
 * OpenCTI configures it (Query '*': 2, Mutation '*': mutation_default, token: 1);
 * a document that fails validation gets HTTP 400, as Apollo answers.
 *
 * Connector records keep `updated_at` and `connector_state`; pingConnector
 * writes them as OpenCTI does (a missing or null state overwrites the stored
 * one), and `active` follows OpenCTI's rule: the ping is less than 5 whole
 * "minutes" old, where a minute is `inactiveAfterMs / 5` (tests shorten it).
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { GraphQLError, buildSchema, execute, parse, specifiedRules, validate, type DocumentNode } from 'graphql';
import { createValidation } from 'graphql-no-alias';

const SCHEMA = readFileSync(new URL('../test/fixtures/opencti/connector-subset.graphql', import.meta.url), 'utf8');

export interface ConnectorRecord {
  id: string;
  name: string;
  connector_state: string | null;
  connector_info: Record<string, unknown> | null;
  /** Date.now() of the last ping (or registration). */
  updated_at: number;
  /** Every ping: when, and the `state` argument as given (undefined: omitted). */
  pings: { at: number; state: string | null | undefined }[];
}

export interface GraphqlCall {
  at: number;
  operationName?: string;
  /** Root fields called, in order (`pingConnector`, `connector`, ...). */
  fields: string[];
  /** The connector ids in the variables (`id0`, `id1`, ...). */
  ids: string[];
  status: number;
  errors: string[];
  authorization?: string;
}

export interface OpenCtiStubOptions {
  /** app:graphql:batching_protection:mutation_default. Default 1 (OpenCTI's default). */
  mutationDefault?: number;
  /** app:graphql:batching_protection:query_default. Default 2 (OpenCTI's default). */
  queryDefault?: number;
  /** OpenCTI's 5-minute rule; tests shorten it. Default 300000. */
  inactiveAfterMs?: number;
}

export interface OpenCtiStub {
  /** The base URL (requests go to `<url>/graphql`). */
  readonly url: string;
  readonly connectors: Map<string, ConnectorRecord>;
  readonly calls: GraphqlCall[];
  /** Calls refused by validation (graphql-no-alias or the schema). */
  validationFailures(): GraphqlCall[];
  /** Registers a connector as pycti's registerConnector would (state kept if it exists). */
  register(id: string, opts?: { name?: string; state?: string | null }): void;
  /** OpenCTI's `active`, judged at `now`. */
  active(id: string, now?: number): boolean;
  /** pingConnector calls received for `id`. */
  pingsOf(id: string): ConnectorRecord['pings'];
  /** Answer the next requests with this HTTP status instead (e.g. 503 with Retry-After). */
  failNext(n: number, status: number, headers?: Record<string, string>): void;
  close(): Promise<void>;
}

export async function startOpenCtiStub(opts: OpenCtiStubOptions = {}): Promise<OpenCtiStub> {
  const inactiveAfterMs = opts.inactiveAfterMs ?? 300_000;
  const schema = buildSchema(SCHEMA);
  const { validation } = createValidation({
    permissions: {
      Query: { '*': opts.queryDefault ?? 2 },
      Mutation: { '*': opts.mutationDefault ?? 1, token: 1 },
    },
  });
  const rules = [...specifiedRules, validation];
  const connectors = new Map<string, ConnectorRecord>();
  const calls: GraphqlCall[] = [];
  let failures: { left: number; status: number; headers?: Record<string, string> } | undefined;

  const minute = inactiveAfterMs / 5;
  const active = (r: ConnectorRecord, now: number) => Math.floor((now - r.updated_at) / minute) < 5;
  const view = (r: ConnectorRecord) => ({
    id: r.id,
    name: r.name,
    active: active(r, Date.now()),
    connector_type: 'EXTERNAL_IMPORT',
    connector_state: r.connector_state,
    connector_info: r.connector_info,
    updated_at: new Date(r.updated_at).toISOString(),
  });
  const notFound = () => new GraphQLError('No connector found with the specified ID');
  const rootValue = {
    connector: ({ id }: { id: string }) => {
      const r = connectors.get(id);
      return r ? view(r) : null;
    },
    pingConnector: ({ id, state, connectorInfo }: { id: string; state?: string | null; connectorInfo?: Record<string, unknown> }) => {
      const r = connectors.get(id);
      if (!r) throw notFound();
      const now = Date.now();
      r.pings.push({ at: now, state });
      r.updated_at = now;
      r.connector_state = state ?? null; // OpenCTI: omitted or null overwrites the stored state
      if (connectorInfo) r.connector_info = connectorInfo;
      return view(r);
    },
    registerConnector: ({ input }: { input: { id: string; name: string } }) => {
      register(input.id, { name: input.name });
      return view(connectors.get(input.id) as ConnectorRecord);
    },
    deleteConnector: ({ id }: { id: string }) => {
      if (!connectors.delete(id)) throw notFound();
      return id;
    },
  };
  function register(id: string, o: { name?: string; state?: string | null } = {}): void {
    const old = connectors.get(id);
    connectors.set(id, {
      id, name: o.name ?? old?.name ?? `connector-${id.slice(0, 8)}`,
      connector_state: o.state !== undefined ? o.state : (old?.connector_state ?? null),
      connector_info: old?.connector_info ?? null, updated_at: Date.now(), pings: old?.pings ?? [],
    });
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const call: GraphqlCall = { at: Date.now(), fields: [], ids: [], status: 200, errors: [] };
      if (req.headers.authorization !== undefined) call.authorization = req.headers.authorization;
      calls.push(call);
      const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        call.status = status;
        res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || req.url !== '/graphql') return send(404, { errors: [{ message: 'not found' }] });
      if (failures && failures.left > 0) {
        failures.left--;
        return send(failures.status, { errors: [{ message: `stub answers ${failures.status}` }] }, failures.headers);
      }
      let body: { query?: string; variables?: Record<string, unknown>; operationName?: string };
      let document: DocumentNode;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
        document = parse(body.query ?? '');
      } catch (err) {
        call.errors.push((err as Error).message);
        return send(400, { errors: [{ message: (err as Error).message, extensions: { code: 'GRAPHQL_PARSE_FAILED' } }] });
      }
      if (body.operationName !== undefined) call.operationName = body.operationName;
      for (const [k, v] of Object.entries(body.variables ?? {})) if (/^id\d+$/.test(k) && typeof v === 'string') call.ids.push(v);
      for (const def of document.definitions) {
        if (def.kind === 'OperationDefinition') for (const s of def.selectionSet.selections) if (s.kind === 'Field') call.fields.push(s.name.value);
      }
      const invalid = validate(schema, document, rules);
      if (invalid.length > 0) {
        call.errors.push(...invalid.map((e) => e.message));
        return send(400, { errors: invalid.map((e) => ({ ...e.toJSON(), extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } })) });
      }
      Promise.resolve(execute({ schema, document, rootValue, variableValues: body.variables, operationName: body.operationName }))
        .then((result) => {
          call.errors.push(...(result.errors ?? []).map((e) => e.message));
          send(200, { data: result.data ?? null, ...(result.errors ? { errors: result.errors.map((e) => e.toJSON()) } : {}) });
        })
        .catch((err: unknown) => send(500, { errors: [{ message: String(err) }] }));
    });
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    connectors,
    calls,
    validationFailures: () => calls.filter((c) => c.status === 400),
    register,
    active: (id, now = Date.now()) => {
      const r = connectors.get(id);
      return r !== undefined && active(r, now);
    },
    pingsOf: (id) => connectors.get(id)?.pings ?? [],
    failNext: (n, status, headers) => {
      failures = headers === undefined ? { left: n, status } : { left: n, status, headers };
    },
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}
