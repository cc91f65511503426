import { readFileSync } from 'node:fs';
import { buildSchema, parse, specifiedRules, validate } from 'graphql';
import { createValidation } from 'graphql-no-alias';
import { describe, expect, it } from 'vitest';
import { deleteDocument, pingDocument, readDocument } from '../../../src/daemon/opencti/documents.js';

const schema = buildSchema(readFileSync(new URL('../../fixtures/opencti/connector-subset.graphql', import.meta.url), 'utf8'));
const ID = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

function errorsWith(mutationDefault: number, query: string): string[] {
  const { validation } = createValidation({ permissions: { Query: { '*': 2 }, Mutation: { '*': mutationDefault, token: 1 } } });
  return validate(schema, parse(query), [...specifiedRules, validation]).map((e) => e.message);
}

describe('GraphQL documents (checked against the OpenCTI schema fixture)', () => {
  it('builds one pingConnector call that passes OpenCTI\'s default alias protection', () => {
    const doc = pingDocument([{ id: ID(1), state: '{"cursor":1}' }]);
    expect(errorsWith(1, doc.query)).toEqual([]);
    expect(doc.variables).toEqual({ id0: ID(1), state0: '{"cursor":1}' });
  });

  it('always sends state (null included) and connectorInfo only when known', () => {
    const info = { run_and_terminate: false, buffering: false, queue_threshold: 500, queue_messages_size: 0.1 };
    const doc = pingDocument([{ id: ID(1), state: null }, { id: ID(2), state: 's', info }]);
    expect(doc.variables).toEqual({ id0: ID(1), state0: null, id1: ID(2), state1: 's', info1: info });
    expect(doc.query).toContain('c0: pingConnector(id: $id0, state: $state0)');
    expect(doc.query).toContain('c1: pingConnector(id: $id1, state: $state1, connectorInfo: $info1)');
    expect(errorsWith(2, doc.query)).toEqual([]);
  });

  it('25 aliases pass when the operator raises mutation_default to 25, and fail with the default', () => {
    const doc = pingDocument(Array.from({ length: 25 }, (_, i) => ({ id: ID(i), state: null })));
    expect(errorsWith(25, doc.query)).toEqual([]);
    expect(errorsWith(1, doc.query)[0]).toBe('Allowed number of calls for Mutation->pingConnector has been exceeded (max: 1)');
  });

  it('puts worker-reported text only in variables, never in the document', () => {
    const doc = pingDocument([{ id: ID(1), state: '") { evil } #' }]);
    expect(doc.query).not.toContain('evil');
  });

  it('reads states with aliased connector(id) queries and deletes one connector per document', () => {
    expect(errorsWith(1, readDocument([ID(1), ID(2)]).query)).toEqual([]);
    expect(errorsWith(1, deleteDocument(ID(1)).query)).toEqual([]);
    expect(readDocument([ID(1)]).variables).toEqual({ id0: ID(1) });
  });
});
