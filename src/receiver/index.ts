export { startReceiver, type Receiver, type ReceiverOptions, type ReceiverStats } from './server.js';
export { Ledger, type NodeLease, type ReceiverEvent, type NodeChange, type WorkerChange } from './ledger.js';
export { formatEvent } from './format.js';
export { DeltaViews, NodeView, type DeltaVerdict } from './delta.js';
