/**
 * GraphQL documents for OpenCTI, built as plain strings (no GraphQL library
 * needed): every value travels in variables, so nothing a worker reports
 * can change a document's shape. Pure.
 *
 * - ping: up to N aliased `pingConnector` calls (`c0`, `c1`, ...). `state` is
 *   always sent: OpenCTI overwrites the stored state with whatever comes,
 *   including nothing. `connectorInfo` only when known (omitted, OpenCTI
 *   leaves the stored info alone).
 * - read: aliased `connector(id) { connector_state }` before the first ping
 *   of a connector whose state we do not know.
 * - delete: one `deleteConnector` per document.
 */
import type { ConnectorInfo } from './connector-map.js';

export interface GraphqlRequest {
  query: string;
  variables: Record<string, unknown>;
  operationName: string;
}

export interface PingItem {
  id: string;
  /** The state to store (a JSON string as pycti sends it, or null when the platform holds none). */
  state: string | null;
  info?: ConnectorInfo;
}

export function alias(i: number): string {
  return `c${i}`;
}

/** The field every answer asks for: the stored state comes back, so it can be cached. */
const SELECTION = '{ id connector_state }';

export function pingDocument(items: readonly PingItem[]): GraphqlRequest {
  const vars: string[] = [];
  const calls: string[] = [];
  const variables: Record<string, unknown> = {};
  items.forEach((item, i) => {
    vars.push(`$id${i}: ID!`, `$state${i}: String`);
    variables[`id${i}`] = item.id;
    variables[`state${i}`] = item.state;
    let args = `id: $id${i}, state: $state${i}`;
    if (item.info !== undefined) {
      vars.push(`$info${i}: ConnectorInfoInput`);
      variables[`info${i}`] = item.info;
      args += `, connectorInfo: $info${i}`;
    }
    calls.push(`${alias(i)}: pingConnector(${args}) ${SELECTION}`);
  });
  return {
    operationName: 'HbaggPingConnectors',
    query: `mutation HbaggPingConnectors(${vars.join(', ')}) { ${calls.join(' ')} }`,
    variables,
  };
}

export function readDocument(ids: readonly string[]): GraphqlRequest {
  const variables: Record<string, unknown> = {};
  const vars = ids.map((id, i) => {
    variables[`id${i}`] = id;
    return `$id${i}: String!`;
  });
  const calls = ids.map((_, i) => `${alias(i)}: connector(id: $id${i}) ${SELECTION}`);
  return {
    operationName: 'HbaggReadConnectorStates',
    query: `query HbaggReadConnectorStates(${vars.join(', ')}) { ${calls.join(' ')} }`,
    variables,
  };
}

export function deleteDocument(id: string): GraphqlRequest {
  return {
    operationName: 'HbaggDeleteConnector',
    query: `mutation HbaggDeleteConnector($id0: ID!) { ${alias(0)}: deleteConnector(id: $id0) }`,
    variables: { id0: id },
  };
}
