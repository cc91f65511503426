/** The configuration module: schema, loading with readable errors, and a printable redacted view. */
export type * from './types.js';
export { ConfigError, type ConfigIssue } from './errors.js';
export { loadConfig, type LoadConfigOptions } from './load.js';
export { checkForRun } from './run-checks.js';
export { redactConfig, REDACTED } from './redact.js';
export {
  configSchema,
  LOG_LEVELS,
  MIN_TOMBSTONE_RETENTION_MS,
  NODE_ID_PATTERN,
  type HbaggConfigInput,
  type HbaggConfigParsed,
} from './schema.js';
export { parseHostPort, type HostPort } from './checks.js';
