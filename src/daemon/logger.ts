/**
 * JSON logs (pino) to stdout. Anything that can hold a secret is redacted by
 * path, so a token never reaches a log line even when an object is logged whole.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config/types.js';

export const REDACT_PATHS = [
  'token', '*.token', '*.*.token', '*.*.*.token', 'pass', '*.pass', '*.*.pass', '*.*.*.pass',
  'password', '*.password', '*.*.password',
  'authorization', '*.authorization', '*.*.authorization', '*.*.*.authorization',
];

export function createLogger(level: LogLevel, dest?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { app: 'hbagg' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    dest ?? pino.destination({ dest: 1, sync: false }),
  );
}
