export { DeadlineError, orTimeout, settleWithin, within, type Timers } from './deadline.js';
export { freePort } from './free-port.js';
export { errorText, StepRunner, type StepResult, type StepRunnerOptions } from './steps.js';
export { redactUrl } from './redact-url.js';
export { findNatsServerBinary } from './nats-server-binary.js';
