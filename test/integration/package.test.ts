/**
 * The package as a user gets it: `npm pack` (which builds dist/ through
 * `prepare`), the tarball installed into a scratch folder outside the repo,
 * every entry point loaded by Node (ESM `import` and CommonJS `require`),
 * type-checked by tsc (NodeNext), the installed `hbagg --version`, and a
 * daemon started and stopped from a config object through `import 'hbagg'`.
 *
 * The install is offline: a lockfile made from the repo's own (its
 * production entries) lets `npm ci --offline` take every dependency from the
 * npm cache that the repo's `npm ci` filled. Only if that fails does it fall
 * back to `npm install --prefer-offline`, which may ask the npm registry.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsServer, startPlatformStub, type NatsServerHandle, type PlatformStub } from '../../testing/index.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  license: string;
  dependencies: Record<string, string>;
  bin: Record<string, string>;
  engines: Record<string, string>;
};
const ENTRY_POINTS = ['hbagg', 'hbagg/client', 'hbagg/protocol', 'hbagg/receiver'];
const SLOW_MS = 240_000;

let scratch: string;
let packed: string[];

async function sh(cmd: string, args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(cmd, args, { cwd, maxBuffer: 32 * 1024 * 1024, timeout: SLOW_MS });
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

/** The repo lockfile's production entries, with the tarball as the one dependency. */
function writeOfflineLock(tgz: string): void {
  const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; devOptional?: boolean }>;
  };
  const integrity = `sha512-${createHash('sha512').update(readFileSync(path.join(scratch, tgz))).digest('base64')}`;
  const packages: Record<string, unknown> = {
    '': { name: 'scratch', dependencies: { hbagg: `file:${tgz}` } },
    'node_modules/hbagg': {
      version: pkg.version, resolved: `file:${tgz}`, integrity, license: pkg.license,
      dependencies: pkg.dependencies, bin: pkg.bin, engines: pkg.engines,
    },
  };
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (key.startsWith('node_modules/') && !entry.dev && !entry.devOptional) packages[key] = entry;
  }
  writeFileSync(path.join(scratch, 'package-lock.json'), JSON.stringify({ name: 'scratch', lockfileVersion: 3, requires: true, packages }));
}

beforeAll(async () => {
  scratch = mkdtempSync(path.join(tmpdir(), 'hbagg-package-'));
  const { stdout } = await sh('npm', ['pack', '--pack-destination', scratch, '--json'], ROOT);
  packed = (JSON.parse(stdout.slice(stdout.indexOf('['))) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  const tgz = readdirSync(scratch).find((f) => f.endsWith('.tgz'));
  if (tgz === undefined) throw new Error(`npm pack left no tarball in ${scratch}`);
  writeFileSync(
    path.join(scratch, 'package.json'),
    JSON.stringify({ name: 'scratch', private: true, type: 'module', dependencies: { hbagg: `file:${tgz}` } }),
  );
  writeOfflineLock(tgz);
  try {
    await sh('npm', ['ci', '--offline', '--no-audit', '--no-fund'], scratch);
  } catch {
    rmSync(path.join(scratch, 'package-lock.json'), { force: true });
    await sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], scratch);
  }
}, SLOW_MS);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('holds the build of every entry point, the bin, the schemas and the default config, and no sources or tests', () => {
    for (const file of ['dist/index.js', 'dist/index.d.ts', 'dist/cli.js', 'config/default.json', 'schemas/beat.json']) {
      expect(packed).toContain(file);
    }
    for (const sub of ['client', 'protocol', 'receiver']) {
      expect(packed).toContain(`dist/${sub}/index.js`);
      expect(packed).toContain(`dist/${sub}/index.d.ts`);
    }
    expect(packed.filter((f) => /^(src|test|testing|bench|scripts)\//.test(f))).toEqual([]);
  });

  it('loads every entry point with an ESM import and with a CommonJS require', async () => {
    const list = JSON.stringify(ENTRY_POINTS);
    const esm = `const out = {}; for (const m of ${list}) out[m] = Object.keys(await import(m)).sort(); console.log(JSON.stringify(out));`;
    const cjs = `const out = {}; for (const m of ${list}) out[m] = Object.keys(require(m)).sort(); console.log(JSON.stringify(out));`;
    writeFileSync(path.join(scratch, 'load.cjs'), cjs);
    const viaImport = JSON.parse((await sh(process.execPath, ['--input-type=module', '-e', esm], scratch)).stdout) as Record<string, string[]>;
    const viaRequire = JSON.parse((await sh(process.execPath, ['load.cjs'], scratch)).stdout) as Record<string, string[]>;
    expect(viaRequire).toEqual(viaImport);
    expect(viaImport['hbagg']).toEqual(expect.arrayContaining(['startDaemon', 'checkConfig', 'loadConfig', 'ConfigError', 'VERSION']));
    expect(viaImport['hbagg/client']).toEqual(expect.arrayContaining(['HeartbeatClient', 'installGracefulShutdown', 'TaskTracker']));
    expect(viaImport['hbagg/protocol']).toEqual(expect.arrayContaining(['Beat', 'Leave', 'Ping', 'decodeBeat']));
    expect(viaImport['hbagg/receiver']).toEqual(expect.arrayContaining(['startReceiver', 'Ledger']));
  });

  it('type-checks an ESM and a CommonJS consumer against the installed types (NodeNext)', async () => {
    // `IsAny` proves the types resolved: a missing declaration would make them `any` under skipLibCheck.
    writeFileSync(
      path.join(scratch, 'consumer.ts'),
      `import { checkConfig, startDaemon, type DaemonHandle, type HbaggConfig } from 'hbagg';
import { HeartbeatClient } from 'hbagg/client';
import { Beat, type Ping } from 'hbagg/protocol';
import { Ledger, startReceiver, type Receiver } from 'hbagg/receiver';
type IsAny<T> = 0 extends 1 & T ? true : false;
export const typed: [IsAny<HbaggConfig>, IsAny<DaemonHandle>, IsAny<Ping>, IsAny<Receiver>, IsAny<HeartbeatClient>] = [false, false, false, false, false];
const check = checkConfig({ input: { platform: { url: 'http://127.0.0.1:9/p' } }, env: {} });
export const start: (c: HbaggConfig) => Promise<DaemonHandle> = startDaemon;
export const interval: number | undefined = check.ok ? check.config.flush.minIntervalMs : undefined;
export const parsed = Beat.safeParse({}).success;
export { Ledger, startReceiver };
`,
    );
    writeFileSync(
      path.join(scratch, 'consumer.cts'),
      `import hbagg = require('hbagg');
import client = require('hbagg/client');
type IsAny<T> = 0 extends 1 & T ? true : false;
export const typed: [IsAny<typeof hbagg.checkConfig>, IsAny<typeof client.HeartbeatClient>] = [false, false];
`,
    );
    writeFileSync(
      path.join(scratch, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true,
          skipLibCheck: true, types: ['node'], typeRoots: [path.join(ROOT, 'node_modules/@types')],
        },
        files: ['consumer.ts', 'consumer.cts'],
      }),
    );
    await sh(process.execPath, [TSC, '-p', 'tsconfig.json'], scratch);
  });

  it('runs the installed hbagg command', async () => {
    const { stdout } = await sh(path.join(scratch, 'node_modules/.bin/hbagg'), ['--version'], scratch);
    expect(stdout.trim()).toBe(pkg.version);
  });

  describe('import "hbagg"', () => {
    let nats: NatsServerHandle;
    let platform: PlatformStub;
    beforeAll(async () => {
      nats = await startNatsServer();
      platform = await startPlatformStub();
    });
    afterAll(async () => {
      await platform?.close();
      await nats?.stop();
    });

    it('starts a daemon from a config object, which pings and answers /readyz, and stops it with a final ping', async () => {
      const input = {
        node_id: 'packaged',
        nats: { servers: [nats.url], subject_prefix: 'pkg' },
        platform: { url: platform.url },
        http: { listen: '127.0.0.1:0' },
        state_dir: path.join(scratch, 'state'),
        log_level: 'silent',
      };
      const script = `
import { checkConfig, startDaemon } from 'hbagg';
const check = checkConfig({ input: ${JSON.stringify(input)}, env: {}, requirePlatformUrl: true });
if (!check.ok) throw new Error(JSON.stringify(check.issues));
const bad = checkConfig({ input: { flush: { min_interval_ms: 'soon' } }, env: {} });
const daemon = await startDaemon(check.config);
await daemon.natsReady();
const ready = await fetch(\`http://127.0.0.1:\${daemon.http.port}/readyz\`);
const snap = await daemon.snapshot();
await daemon.stop();
console.log(JSON.stringify({ node: daemon.node, ready: ready.status, nats: snap.nats.ready, state: daemon.state, bad: bad.ok ? [] : bad.issues.map((i) => i.key) }));
`;
      const { stdout } = await sh(process.execPath, ['--input-type=module', '-e', script], scratch);
      expect(JSON.parse(stdout)).toEqual({ node: 'packaged', ready: 200, nats: true, state: 'stopped', bad: ['flush.min_interval_ms'] });
      const pings = platform.accepted().map((r) => r.body as { node: string; batch: { final: boolean } });
      expect(pings.every((p) => p.node === 'packaged')).toBe(true);
      expect(pings.at(-1)?.batch.final).toBe(true);
    });
  });
});
