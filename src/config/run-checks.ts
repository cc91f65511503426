/**
 * What `hbagg run` needs beyond valid values, so that `check-config` (which
 * checks for `run` by default) passes only a config that `run` accepts.
 * Reads the file system, never writes it: checking must not create the state dir.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ConfigIssue } from './errors.js';
import type { HbaggConfig } from './types.js';

export function checkForRun(cfg: HbaggConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const stateDir = checkStateDir(cfg.stateDir);
  if (stateDir !== undefined) issues.push({ key: 'state_dir', message: stateDir });
  for (const [key, file] of [['nats.creds_file', cfg.nats.credsFile], ['nats.tls_ca_file', cfg.nats.tlsCaFile]] as const) {
    if (file === undefined) continue;
    try {
      fs.accessSync(file, fs.constants.R_OK);
    } catch {
      issues.push({ key, message: `cannot read ${JSON.stringify(file)}: check the path and that the user running hbagg may read it` });
    }
  }
  return issues;
}

/** The directory, or the nearest existing ancestor `run` would create it in, must be a writable directory. */
function checkStateDir(dir: string): string | undefined {
  let at = path.resolve(dir);
  for (;;) {
    let stat: fs.Stats | undefined;
    try {
      stat = fs.statSync(at);
    } catch {
      stat = undefined;
    }
    if (stat !== undefined) {
      if (!stat.isDirectory()) return `${JSON.stringify(at)} is a file, not a directory: remove it, or set state_dir (HBAGG_STATE_DIR) elsewhere`;
      try {
        fs.accessSync(at, fs.constants.W_OK | fs.constants.X_OK);
        return undefined;
      } catch {
        return `${JSON.stringify(at)} is not writable by this user: give it write access, or set state_dir (HBAGG_STATE_DIR) to a directory it can write`;
      }
    }
    const up = path.dirname(at);
    if (up === at) return undefined;
    at = up;
  }
}
