/**
 * Docker cannot run where the tests run, so the deployment files are checked
 * against the project instead: every command, flag, env variable, port and
 * file they use must exist in it. A rename in the code breaks this test, not
 * somebody's first `docker compose up`.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const exists = (file: string) => existsSync(path.join(ROOT, file));

interface Healthcheck {
  test?: string[];
  disable?: boolean;
}
interface Service {
  image?: string;
  build?: string;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: Healthcheck;
}

const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service> };
const services = compose.services;
const service = (name: string): Service => {
  const s = services[name];
  if (!s) throw new Error(`docker-compose.yml has no service "${name}"`);
  return s;
};
const dockerfile = read('Dockerfile');

/** `hbagg <command>` lines of the CLI's usage text, with the flags each documents. */
function documentedCommands(): Map<string, Set<string>> {
  const usage = /const USAGE = `([\s\S]*?)`;/.exec(read('src/cli.ts'))?.[1];
  if (!usage) throw new Error('no USAGE in src/cli.ts');
  const commands = new Map<string, Set<string>>();
  for (const m of usage.matchAll(/^\s+hbagg ([a-z][a-z-]*)(.*)$/gm)) {
    commands.set(m[1]!, new Set([...m[2]!.matchAll(/--[a-z][a-z-]*/g)].map((f) => f[0])));
  }
  return commands;
}

/** The variables `loadConfig` reads. */
const configVars = new Set([...read('src/config/load.ts').matchAll(/'(HBAGG_[A-Z_]+)'/g)].map((m) => m[1]!));

/** `node -e "fetch('http://HOST:PORT/PATH')..."` healthchecks: the URL. */
function healthUrl(h: Healthcheck | undefined): URL | undefined {
  const text = h?.test?.join(' ') ?? '';
  const m = /https?:\/\/[^'"\s)]+/.exec(text);
  return m ? new URL(m[0]) : undefined;
}

/** Container side of each `[ip:]host:container` port mapping. */
const containerPorts = (s: Service) => (s.ports ?? []).map((p) => Number(p.split(':').at(-1)));

const usesHbaggImage = (s: Service) => s.image === 'hbagg:local' || s.build !== undefined;

describe('docker-compose.yml', () => {
  it('has nats, hbagg, the receiver and two example workers', () => {
    expect(Object.keys(services).sort()).toEqual(['hbagg', 'nats', 'receiver', 'worker-py', 'worker-ts']);
    expect(service('nats').image).toMatch(/^nats:/);
    expect(service('nats').command).toContain('-js');
    expect(service('hbagg').build).toBe('.');
  });

  it('runs only hbagg commands and flags that the CLI usage documents', () => {
    const commands = documentedCommands();
    expect([...commands.keys()]).toEqual(expect.arrayContaining(['run', 'receive', 'demo']));
    const checked = [];
    for (const [name, s] of Object.entries(services)) {
      if (!usesHbaggImage(s) || s.entrypoint !== undefined) continue;
      const [command, ...args] = s.command ?? ['run'];
      expect(commands.has(command!), `${name}: hbagg ${command}`).toBe(true);
      for (const flag of args.filter((a) => a.startsWith('--'))) {
        expect(commands.get(command!)!.has(flag), `${name}: hbagg ${command} ${flag}`).toBe(true);
      }
      checked.push(name);
    }
    expect(checked.sort()).toEqual(['hbagg', 'receiver']);
  });

  it('sets only environment variables that the programs read', () => {
    const hbagg = service('hbagg').environment ?? {};
    for (const name of Object.keys(hbagg)) expect(configVars.has(name), `hbagg: ${name} is not read by loadConfig`).toBe(true);
    expect(Object.keys(hbagg)).toEqual(expect.arrayContaining(['HBAGG_NATS_URL', 'HBAGG_PLATFORM_URL', 'HBAGG_HTTP_LISTEN']));

    const example = read('examples/worker.ts');
    for (const name of Object.keys(service('worker-ts').environment ?? {})) {
      expect(example, `worker-ts: ${name} is not read by examples/worker.ts`).toMatch(new RegExp(`process\\.env(\\.${name}\\b|\\['${name}'\\])`));
    }
  });

  it('passes the Python worker only flags it accepts', () => {
    const command = service('worker-py').command ?? [];
    const script = command.find((a) => a.endsWith('.py'));
    const args = command.slice(command.indexOf(script ?? '') + 1);
    expect(script).toBe('/examples/worker_http.py');
    const source = read('examples/python/worker_http.py');
    for (const flag of args.filter((a) => a.startsWith('--'))) expect(source).toContain(`"${flag}"`);
  });

  it('publishes and probes the ports the programs listen on', () => {
    const hbagg = service('hbagg');
    const listenPort = Number(hbagg.environment?.HBAGG_HTTP_LISTEN?.split(':').at(-1));
    expect(listenPort).toBe(9470);
    expect(containerPorts(hbagg)).toEqual([listenPort]);
    expect(Number(healthUrl(hbagg.healthcheck)?.port)).toBe(listenPort);
    expect(dockerfile).toMatch(new RegExp(`^EXPOSE ${listenPort}$`, 'm'));

    const receiver = service('receiver');
    const receivePort = Number(receiver.command?.[receiver.command.indexOf('--port') + 1]);
    expect(containerPorts(receiver)).toEqual([receivePort]);
    expect(Number(healthUrl(receiver.healthcheck)?.port)).toBe(receivePort);
    expect(receiver.command?.[receiver.command.indexOf('--host') + 1]).toBe('0.0.0.0');

    const platform = new URL(hbagg.environment?.HBAGG_PLATFORM_URL ?? '');
    expect(Number(platform.port)).toBe(receivePort);
    const nats = new URL(hbagg.environment?.HBAGG_NATS_URL ?? '');
    expect(containerPorts(service('nats'))).toEqual([Number(nats.port)]);
    const pyUrl = new URL(service('worker-py').command?.[service('worker-py').command!.indexOf('--url') + 1] ?? '');
    expect(Number(pyUrl.port)).toBe(listenPort);
  });

  it('points every URL at a service that exists', () => {
    const urls: string[] = [];
    for (const s of Object.values(services)) {
      for (const v of [...Object.values(s.environment ?? {}), ...(s.command ?? [])]) {
        if (/^(https?|nats):\/\//.test(v)) urls.push(v);
      }
    }
    expect(urls.length).toBeGreaterThanOrEqual(4);
    for (const u of urls) expect(Object.keys(services), u).toContain(new URL(u).hostname);
  });

  it('wires hbagg health to /readyz, and waits only on services that have a health check', () => {
    expect(healthUrl(service('hbagg').healthcheck)?.pathname).toBe('/readyz');
    expect(healthUrl(service('receiver').healthcheck)?.pathname).toBe('/healthz');
    expect(read('src/receiver/receiver.ts')).toContain("path === '/healthz'");
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(Object.keys(services), `${name} depends on ${dep}`).toContain(dep);
        if (condition === 'service_healthy') {
          const h = service(dep).healthcheck;
          expect(h?.test !== undefined && !h.disable, `${dep} has a health check`).toBe(true);
        }
      }
    }
  });

  it('references only files that exist', () => {
    for (const [name, s] of Object.entries(services)) {
      if (s.build !== undefined) expect(exists(path.join(s.build, 'Dockerfile')), `${name}: build context`).toBe(true);
      for (const v of s.volumes ?? []) {
        const [source] = v.split(':');
        if (source!.startsWith('.')) expect(exists(source!), `${name}: ${source}`).toBe(true);
      }
    }
    // worker-py runs a file from its bind mount.
    const mount = service('worker-py').volumes?.[0]?.split(':') ?? [];
    const script = service('worker-py').command?.find((a) => a.endsWith('.py')) ?? '';
    expect(script.startsWith(`${mount[1]}/`)).toBe(true);
    expect(exists(path.join(mount[0]!, script.slice(mount[1]!.length)))).toBe(true);
    // worker-ts runs examples/worker.ts, compiled by the Dockerfile into examples-dist.
    expect(service('worker-ts').entrypoint).toEqual(['node', 'examples-dist/examples/worker.js']);
    expect(exists('examples/worker.ts')).toBe(true);
    expect(dockerfile).toMatch(/--outDir examples-dist examples\/worker\.ts/);
    expect(dockerfile).toContain('COPY --from=build /app/examples-dist ./examples-dist');
  });
});

describe('Dockerfile', () => {
  it('builds in stages on node:20-slim and runs production dependencies as a non-root user', () => {
    expect(dockerfile.match(/^FROM node:20-slim/gm)?.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^RUN npm ci .*--omit=dev/m);
    expect(dockerfile).toMatch(/npx tsc -p tsconfig\.build\.json/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK [\s\S]*\/readyz/m);
    expect(dockerfile).toMatch(/HBAGG_STATE_DIR=\/var\/lib\/hbagg/);
    expect(dockerfile).toMatch(/chown node:node \/var\/lib\/hbagg/);
  });

  it('starts the CLI that the build produces, and copies only paths that exist', () => {
    const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string> };
    expect(dockerfile).toContain(`ENTRYPOINT ["node", "${pkg.bin.hbagg}"]`);
    const build = JSON.parse(read('tsconfig.build.json')) as { compilerOptions: { rootDir: string; outDir: string } };
    expect(pkg.bin.hbagg).toBe(`${build.compilerOptions.outDir}/cli.js`);
    expect(exists(`${build.compilerOptions.rootDir}/cli.ts`)).toBe(true);
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const source of m[1]!.split(/\s+/)) expect(exists(source), `COPY ${source}`).toBe(true);
    }
  });

  it('keeps local state, dependencies and build output out of the build context', () => {
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim());
    expect(ignored).toEqual(expect.arrayContaining(['.git', 'node_modules', 'dist', 'state']));
  });
});

describe('deploy/hbagg.service and deploy/hbagg.env', () => {
  const unit = read('deploy/hbagg.service');
  const setting = (key: string) => [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!);

  it('runs `hbagg run`, restarts on failure but not on a bad configuration', () => {
    const [exec] = setting('ExecStart');
    expect(exec).toMatch(/\/hbagg run$/);
    expect(documentedCommands().has('run')).toBe(true);
    expect(setting('Type')).toEqual(['simple']);
    expect(setting('Restart')).toEqual(['on-failure']);
    expect(setting('RestartSec')).toHaveLength(1);
    expect(setting('RestartPreventExitStatus')).toEqual(['2']);
  });

  it('keeps its state in its StateDirectory and reads the env file', () => {
    expect(setting('StateDirectory')).toEqual(['hbagg']);
    expect(setting('Environment')).toContain('HBAGG_STATE_DIR=/var/lib/hbagg');
    expect(setting('EnvironmentFile')).toEqual(['-/etc/hbagg/hbagg.env']);
  });

  it('gives a clean stop more time than the daemon takes', () => {
    expect(setting('KillSignal')).toEqual(['SIGTERM']);
    const stopSec = Number(/^(\d+)s$/.exec(setting('TimeoutStopSec')[0] ?? '')?.[1]);
    const shutdownMs = (JSON.parse(read('config/default.json')) as { shutdown_timeout_ms: number }).shutdown_timeout_ms;
    // The CLI's hard deadline is shutdown_timeout_ms + 2 s.
    expect(stopSec * 1000).toBeGreaterThan(shutdownMs + 2_000);
  });

  it('is hardened', () => {
    for (const key of ['NoNewPrivileges', 'ProtectHome', 'PrivateTmp', 'DynamicUser']) expect(setting(key), key).toEqual(['yes']);
    expect(setting('ProtectSystem')).toEqual(['strict']);
  });

  it('documents only variables that loadConfig reads', () => {
    const names = [...read('deploy/hbagg.env').matchAll(/^#?(HBAGG_[A-Z_]+)=/gm)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(10);
    for (const name of names) expect(configVars.has(name), name).toBe(true);
    expect(names).toContain('HBAGG_PLATFORM_URL');
  });
});
