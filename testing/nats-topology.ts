/**
 * A hub and leaf nats-servers, as a multi-node install runs them: started
 * from the shipped deploy/nats/*.conf, copied to a temporary directory with
 * only the addresses changed (loopback, free ports). Ready means every leaf's
 * link to the hub carries requests.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { startNatsServer, type NatsServerHandle } from './nats-server.js';
import { freePort } from '../src/util/free-port.js';
import { waitFor } from './wait-for.js';

const DEPLOY = path.resolve(import.meta.dirname, '../deploy/nats');

export interface LeafTopology {
  hub: NatsServerHandle;
  leaves: NatsServerHandle[];
  /** Where the config files were written. */
  dir: string;
  stop(): Promise<void>;
}

/** `text` with `from` replaced by `to`; throws if the shipped file no longer has `from`. */
function edit(text: string, from: string, to: string, file: string): string {
  if (!text.includes(from)) throw new Error(`deploy/nats/${file} no longer contains ${JSON.stringify(from)}: update the test topology`);
  return text.replace(from, to);
}

export async function startLeafTopology(leafCount: number): Promise<LeafTopology> {
  const dir = mkdtempSync(path.join(tmpdir(), 'hbagg-topology-'));
  const leafPort = await freePort();
  const hubConf = path.join(dir, 'hub.conf');
  let hubText = readFileSync(path.join(DEPLOY, 'hub.conf'), 'utf8');
  hubText = edit(hubText, 'listen: 0.0.0.0:4222', 'listen: 127.0.0.1:4222', 'hub.conf');
  hubText = edit(hubText, 'port: 7422', `host: 127.0.0.1\n  port: ${leafPort}`, 'hub.conf');
  writeFileSync(hubConf, hubText);
  const hub = await startNatsServer({ args: ['-c', hubConf] });
  const leaves: NatsServerHandle[] = [];
  const stop = async () => {
    await Promise.all(leaves.map((l) => l.stop()));
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const leafText = edit(readFileSync(path.join(DEPLOY, 'leaf.conf'), 'utf8'), 'nats-leaf://hub.example:7422', `nats-leaf://127.0.0.1:${leafPort}`, 'leaf.conf');
    for (let i = 1; i <= leafCount; i++) {
      const file = path.join(dir, `leaf${i}.conf`);
      writeFileSync(file, leafText);
      // -a/-p on the command line win over the file's `listen`.
      leaves.push(await startNatsServer({ args: ['-c', file] }));
    }
    for (const leaf of leaves) await waitLinked(hub.url, leaf.url);
  } catch (err) {
    await stop();
    throw err;
  }
  return { hub, leaves, dir, stop };
}

/** Until a request from the hub reaches a responder on the leaf (the leaf link is up and has the interest). */
async function waitLinked(hubUrl: string, leafUrl: string): Promise<void> {
  const subject = `topology.link.${randomBytes(4).toString('hex')}`;
  const leaf = await connect({ servers: leafUrl });
  const hub = await connect({ servers: hubUrl });
  try {
    leaf.subscribe(subject, { callback: (_e, m) => {
      m.respond();
    } });
    await leaf.flush();
    await waitFor(
      async () => {
        await hub.request(subject, undefined, { timeout: 200 });
        return true;
      },
      { timeoutMs: 10_000, message: `leaf ${leafUrl} linked to hub ${hubUrl}` },
    );
  } finally {
    await leaf.close();
    await hub.close();
  }
}
