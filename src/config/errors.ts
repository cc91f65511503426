/**
 * `ConfigError` and the translation of zod issues into lines people read:
 * one `key: why` per problem, where the key is the dotted path they wrote in
 * the file, or the environment variable the value came from.
 */
import type { z } from 'zod';

export interface ConfigIssue {
  /** `flush.min_interval_ms`, `nats.servers[1]`, `HBAGG_MIN_INTERVAL_MS` or the config file's path. */
  key: string;
  message: string;
}

/** Thrown by `loadConfig()` with every problem found, not just the first. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    super(issues.map((issue) => `${issue.key}: ${issue.message}`).join('\n'));
    this.issues = issues;
  }
}

/** Dotted path of a key in the file; array indexes as `[i]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(top level)' : out;
}

/**
 * Which environment variable set which dotted path. A problem under that
 * path is reported under the variable's name, since that is what to fix.
 */
export type EnvSources = ReadonlyMap<string, string>;

export function keyFor(path: readonly PropertyKey[], sources: EnvSources): string {
  for (let len = path.length; len > 0; len--) {
    const name = sources.get(formatPath(path.slice(0, len)));
    if (name !== undefined) return name;
  }
  return formatPath(path);
}

/** One zod issue may name several unknown keys; each becomes its own line. */
export function fromZodIssue(issue: z.core.$ZodIssue, sources: EnvSources): ConfigIssue[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({
      key: formatPath([...issue.path, key]),
      message: 'unknown key (misspelled, or in the wrong section?)',
    }));
  }
  return [{ key: keyFor(issue.path, sources), message: issue.message }];
}

/**
 * V8's JSON errors give a character offset only ("... at position 18");
 * people look for a line and a column.
 */
export function describeJsonError(text: string, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (text.trim() === '') return 'invalid JSON: the file is empty';
  const match = /at position (\d+)/.exec(message);
  if (!match || /\(line \d+/.test(message)) return `invalid JSON: ${message}`;
  const position = Number(match[1]);
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  return `invalid JSON at line ${line}, column ${column}: ${message}`;
}

/** Short reasons for the common fs errors; anything else keeps Node's message. */
export function describeReadError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory, not a file';
  return err instanceof Error ? err.message : String(err);
}
