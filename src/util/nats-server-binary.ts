/**
 * Where the `nats-server` binary is: shared by the demo (which starts one when
 * none answers) and the test/bench launcher in testing/.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** The `nats-server` binary: `NATS_SERVER_BIN`, else PATH, else the usual sbin directories. */
export function findNatsServerBinary(): string | undefined {
  const fromEnv = process.env['NATS_SERVER_BIN'];
  if (fromEnv) return fromEnv;
  // Debian installs it in /usr/sbin, which a non-root PATH often lacks.
  const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/local/bin'];
  for (const dir of dirs.filter(Boolean)) {
    const candidate = path.join(dir, 'nats-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
