/**
 * The small interface both stores implement. The ledger decides; a store only
 * keeps one record per node with a revision, swaps it atomically, and
 * publishes events.
 */
import type { RecordEvent } from '../ledger.js';
import type { NodeRecord } from '../record.js';

export interface StoredNode {
  record: NodeRecord;
  /** Changes with every write; 0 never occurs (it means "create" to `swap`). */
  revision: number;
}

/** The store cannot be reached or did not answer in time: nothing was written. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

export interface ReceiverStore {
  readonly kind: 'memory' | 'jetstream';
  /** Connects and loads what is known. */
  start(): Promise<void>;
  /** The latest record this replica knows of (may be behind: `swap` finds out). */
  cached(node: string): StoredNode | undefined;
  /** Every cached record. */
  all(): Iterable<StoredNode>;
  /** The record as the store has it now. */
  read(node: string): Promise<StoredNode | undefined>;
  /**
   * Writes `record` if the stored revision is still `revision` (0: if there is
   * none). Resolves the new revision, or `undefined` when another writer came first.
   */
  swap(node: string, record: NodeRecord, revision: number): Promise<number | undefined>;
  /** Deletes the record if its revision is still `revision`; false when another writer came first. */
  remove(node: string, revision: number): Promise<boolean>;
  /** Publishes events for other services; a repeated event id is dropped by the store. */
  publish(events: readonly RecordEvent[]): Promise<void>;
  /** Resolves when the store answers, rejects with the reason otherwise. */
  check(): Promise<void>;
  close(): Promise<void>;
}
