/**
 * Rules that keep a config report to root causes: each problem once, under
 * the key or variable the user actually set.
 */
import type { z } from 'zod';
import { checkNoControlChars } from './checks.js';
import { type ConfigIssue, type EnvSources, keyFor } from './errors.js';

type Raw = Record<string, unknown>;

/**
 * A conflict between two keys is reported under the one the user set: a
 * message about a default they never wrote ("flush.urgent_flush_ms must be
 * < ...") sends them looking for a key that is not in their file.
 */
export function towardWhatWasSet(issue: z.core.$ZodIssue, raw: Raw): z.core.$ZodIssue {
  if (issue.code !== 'custom') return issue;
  const params = issue.params as { other?: string[]; otherMessage?: string } | undefined;
  if (params?.other === undefined || params.otherMessage === undefined) return issue;
  if (isSet(raw, issue.path) || !isSet(raw, params.other)) return issue;
  return { ...issue, path: params.other, message: params.otherMessage };
}

function isSet(raw: Raw, path: readonly PropertyKey[]): boolean {
  let at: unknown = raw;
  for (const part of path) {
    if (!isPlainObject(at)) return false;
    at = at[String(part)];
  }
  return at !== undefined;
}

/** Every string value (at any depth) holding a control character, under the key or variable that set it. */
export function controlCharIssues(raw: Raw, sources: EnvSources): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const walk = (value: unknown, at: PropertyKey[]): void => {
    if (typeof value === 'string') {
      const message = checkNoControlChars(value);
      if (message !== undefined) out.push({ key: keyFor(at, sources), message });
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => walk(v, [...at, i]));
    } else if (isPlainObject(value)) {
      for (const [k, v] of Object.entries(value)) walk(v, [...at, k]);
    }
  };
  walk(raw, []);
  // An env list (HBAGG_NATS_URL) is one variable: report it once.
  return out.filter((issue, i) => out.findIndex((o) => o.key === issue.key) === i);
}

function isPlainObject(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
