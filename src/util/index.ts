export { DeadlineError, orTimeout, settleWithin, within } from './deadline.js';
export { freePort } from './free-port.js';
export { errorText, StepRunner, type StepResult, type StepRunnerOptions } from './steps.js';
export { redactUrl } from './redact-url.js';
