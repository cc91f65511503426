/**
 * The logger the client library writes to: three methods, so pino, a
 * console wrapper or a test spy all fit. Silent unless the worker passes one.
 */

export type LogMethod = (obj: Record<string, unknown>, msg: string) => void;

export interface ClientLogger {
  warn: LogMethod;
  info: LogMethod;
  debug: LogMethod;
}

const noop: LogMethod = () => undefined;

export const silentLogger: ClientLogger = { warn: noop, info: noop, debug: noop };

/** A one-line readable form of anything thrown. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
