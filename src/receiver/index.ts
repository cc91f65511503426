/** `hbagg/receiver`: the platform side as a library (see README, "Receiving pings"). */
export {
  createReceiver, type CreateReceiverOptions, type ReceiverCounts, type ReceiverHandler, type ReceiverLimits, type ReceiverLogger,
} from './receiver.js';
export { startReceiver, type Receiver, type ReceiverOptions, type ReceiverStats } from './server.js';
export {
  applyPing, expireNode, type ApplyResult, type LedgerOptions, type NodeChange, type ReceiverEvent, type RecordEvent, type WorkerChange,
} from './ledger.js';
export type { InstanceRecord, NodeRecord, NodeState, PendingRestart, WorkerRecord } from './record.js';
export type { NodeView, WorkerView } from './views.js';
export { memoryStore } from './store/memory.js';
export { jetstreamStore, nodeToken, type JetStreamStoreOptions } from './store/jetstream.js';
export { StoreUnavailableError, type ReceiverStore, type StoredNode } from './store/types.js';
export { formatEvent } from './format.js';
export { DeltaViews, NodeView as DeltaNodeView, type DeltaVerdict } from './delta.js';
