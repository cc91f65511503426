/** The default store: one process's memory. Events go only to the receiver's own hook. */
import type { RecordEvent } from '../ledger.js';
import type { NodeRecord } from '../record.js';
import type { ReceiverStore, StoredNode } from './types.js';

export function memoryStore(): ReceiverStore {
  const nodes = new Map<string, StoredNode>();
  let revision = 0;
  return {
    kind: 'memory',
    start: () => Promise.resolve(),
    cached: (node) => nodes.get(node),
    all: () => nodes.values(),
    read: (node) => Promise.resolve(nodes.get(node)),
    swap(node: string, record: NodeRecord, expected: number) {
      if ((nodes.get(node)?.revision ?? 0) !== expected) return Promise.resolve(undefined);
      revision++;
      nodes.set(node, { record, revision });
      return Promise.resolve(revision);
    },
    remove(node: string, expected: number) {
      if (nodes.get(node)?.revision !== expected) return Promise.resolve(false);
      nodes.delete(node);
      return Promise.resolve(true);
    },
    publish: (_events: readonly RecordEvent[]) => Promise.resolve(),
    check: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}
