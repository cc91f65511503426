import { describe, expect, it } from 'vitest';
import { readAnswer } from '../../../src/daemon/opencti/answers.js';

const json = (v: unknown) => JSON.stringify(v);

describe('reading OpenCTI answers', () => {
  it('gives each alias its own verdict: data, unknown id, other error', () => {
    const body = {
      data: { c0: { id: 'a', connector_state: '{"x":1}' }, c1: null, c2: null, c3: { id: 'd', connector_state: null } },
      errors: [
        { message: 'No connector found with the specified ID', path: ['c1'] },
        { message: 'You are not allowed to do this.', path: ['c2'] },
      ],
    };
    const v = readAnswer(200, json(body), ['c0', 'c1', 'c2', 'c3']);
    expect(v.kind).toBe('answered');
    if (v.kind !== 'answered') return;
    expect(v.aliases.get('c0')).toEqual({ kind: 'ok', state: '{"x":1}' });
    expect(v.aliases.get('c1')?.kind).toBe('unknown');
    expect(v.aliases.get('c2')?.kind).toBe('rejected');
    expect(v.aliases.get('c3')).toEqual({ kind: 'ok', state: null });
  });

  it('reads the alias limit from graphql-no-alias, with HTTP 400 or 200', () => {
    const body = { errors: [{ message: 'Allowed number of calls for Mutation->pingConnector has been exceeded (max: 3)' }] };
    expect(readAnswer(400, json(body), ['c0'])).toMatchObject({ kind: 'alias_limit', max: 3 });
    expect(readAnswer(200, json(body), ['c0'])).toMatchObject({ kind: 'alias_limit', max: 3 });
  });

  it('treats connector(id) answering null as an unknown connector', () => {
    const v = readAnswer(200, json({ data: { c0: null } }), ['c0']);
    expect(v.kind === 'answered' && v.aliases.get('c0')?.kind).toBe('unknown');
  });

  it('classifies HTTP failures like the batched ping', () => {
    expect(readAnswer(429, '', ['c0']).kind).toBe('throttled');
    expect(readAnswer(503, '', ['c0']).kind).toBe('throttled');
    expect(readAnswer(413, '', ['c0']).kind).toBe('too_large');
    expect(readAnswer(502, '<html>', ['c0']).kind).toBe('failed');
    expect(readAnswer(401, 'nope', ['c0']).kind).toBe('rejected');
    expect(readAnswer(200, 'not json', ['c0']).kind).toBe('failed');
    expect(readAnswer(200, json({ errors: [{ message: 'You must be logged in' }] }), ['c0'])).toMatchObject({
      kind: 'rejected', message: 'You must be logged in',
    });
  });
});
