/**
 * `hbagg/client`: the worker-side library. A heartbeat publisher with the
 * Leave announcement, and a graceful shutdown that drains tasks in flight.
 */
export {
  HeartbeatClient,
  type HeartbeatClientOptions,
  type HeartbeatClientState,
  type LeaveOptions,
} from './heartbeat-client.js';
export type { LeaveAck, LeaveFailure, LeaveFailureCause, LeaveResult } from './leave-request.js';
export {
  GracefulShutdown,
  installGracefulShutdown,
  type GracefulShutdownOptions,
  type ShutdownClient,
  type ShutdownState,
  type ShutdownStep,
  type ShutdownSummary,
  type SignalSource,
} from './graceful-shutdown.js';
export { TaskTracker, TaskTrackerClosedError } from './task-tracker.js';
export type { BeatTransport } from './transport.js';
export type { ClientLogger, LogMethod } from './logger.js';
export { systemScheduler, type Scheduler, type TimerHandle } from './scheduler.js';
export type { MetaValue, WorkerSnapshot } from './worker-snapshot.js';
export type { LeavePhase } from '../protocol/schemas.js';
