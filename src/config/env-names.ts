/**
 * `HBAGG_*` variables nobody reads: a misspelled one (`HBAGG_MIN_INTERVAL`)
 * is otherwise ignored without a word, and the default silently applies.
 */
import type { ConfigIssue } from './errors.js';

/** Read by other commands (`hbagg receive`), not by the config. */
const OTHER_KNOWN = ['HBAGG_RECEIVER_TOKEN'];

/** One warning per set `HBAGG_*` variable that is not in `known`, naming the closest known name. */
export function unknownEnvWarnings(env: NodeJS.ProcessEnv, known: readonly string[]): ConfigIssue[] {
  const all = [...known, ...OTHER_KNOWN];
  const out: ConfigIssue[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('HBAGG_') || all.includes(name)) continue;
    const closest = all.reduce((best, k) => (distance(name, k) < distance(name, best) ? k : best));
    out.push({ key: name, message: `unknown variable, ignored; did you mean ${closest}?` });
  }
  return out;
}

/** Levenshtein distance (names are short: the quadratic table is fine). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}
