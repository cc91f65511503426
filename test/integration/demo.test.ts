import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answersNats, findOrStartNats, NatsUnavailableError } from '../../src/demo/nats.js';
import { actsOfCycle } from '../../src/demo/script.js';
import { renderLine, renderScreen, type DemoSnapshot } from '../../src/demo/view.js';
import { freePort, spawnHbagg, startNatsServer, type NatsServerHandle } from '../../testing/index.js';

async function runCli(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
  const child = spawnHbagg(args, env);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.proc.kill('SIGKILL');
  }, timeoutMs);
  const code = await child.exited;
  clearTimeout(timer);
  if (timedOut) throw new Error(`hbagg ${args.join(' ')} did not exit within ${timeoutMs} ms\n${child.out()}`);
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

function number(text: string, label: RegExp): number {
  const m = new RegExp(`${label.source}\\s+(\\d+)`).exec(text);
  if (!m) throw new Error(`no ${label.source} in:\n${text}`);
  return Number(m[1]);
}

describe('hbagg demo', () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it('runs for --duration seconds, exits 0, and its summary shows the pings the platform received', async () => {
    const { code, stdout, stderr } = await runCli(['demo', '--duration', '5', '--workers', '3', '--nats', nats.url], 40_000);
    expect(code, `${stdout}\n${stderr}`).toBe(0);
    const pings = number(stdout, /pings received by the platform:/);
    const beatsIn = number(stdout, /beats accepted by the daemon/);
    expect(pings).toBeGreaterThan(0);
    expect(beatsIn).toBeGreaterThan(0);
    // Every accepted beat is reported exactly once in the pings the platform accepted.
    expect(number(stdout, /beats reported in those pings/)).toBe(beatsIn);
    expect(stdout).toContain('final ping received, lease released cleanly');
    expect(stdout).not.toContain('REJECTED');
    // Not a terminal: plain periodic lines and one line per event, no cursor movement.
    expect(stdout).toMatch(/^\[\s*\d+\.\ds\] workers active \d+/m);
    expect(stdout).toMatch(/demo: worker-1 gets SIGTERM/);
    // Draining and stopped may share one ping when no task is in flight.
    expect(stdout).toMatch(/platform: worker worker-1 (draining|stopped) \(instance \w+, reason SIGTERM\)/);
    expect(stdout).not.toContain('\x1b[');
  });

  it('refuses a bad flag with a readable message and exit code 2', async () => {
    const { code, stderr } = await runCli(['demo', '--workers', 'many'], 20_000);
    expect(code).toBe(2);
    expect(stderr).toContain('--workers expects an integer from 1 to 100, got "many"');
  });
});

describe('finding NATS for the demo', () => {
  it('uses a server that answers on the probe port', async () => {
    const server = await startNatsServer();
    try {
      const found = await findOrStartNats({ probePort: server.port });
      expect(found).toMatchObject({ kind: 'found', url: `nats://127.0.0.1:${server.port}` });
    } finally {
      await server.stop();
    }
  });

  it('starts nats-server on a free port when nothing answers, and stops it afterwards', async () => {
    const started = await findOrStartNats({ probePort: await freePort() });
    expect(started.kind).toBe('started');
    const port = Number(new URL(started.url).port);
    expect(await answersNats('127.0.0.1', port, 1000)).toBe(true);
    await started.stop();
    expect(await answersNats('127.0.0.1', port, 500)).toBe(false);
  });

  it('says exactly how to get a server when there is none to find or start', async () => {
    const err = await findOrStartNats({ probePort: await freePort(), binary: '/nonexistent/nats-server' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NatsUnavailableError);
    expect((err as Error).message).toContain('apt-get install nats-server');
    expect((err as Error).message).toContain('docker run -d --name nats -p 4222:4222 nats');
  });
});

describe('the demo script and view', () => {
  it('packs each cycle of acts into its first seconds and uses two different workers', () => {
    const acts = actsOfCycle(0, 4);
    expect(acts).toEqual([
      { atMs: 2000, kind: 'shutdown', worker: 0 },
      { atMs: 5000, kind: 'crash', worker: 1 },
      { atMs: 9000, kind: 'restart', worker: 1 },
    ]);
    expect(actsOfCycle(1, 4).map((a) => a.worker)).toEqual([2, 3, 3]);
    expect(actsOfCycle(0, 1)).toEqual([{ atMs: 2000, kind: 'shutdown', worker: 0 }]);
  });

  const snapshot: DemoSnapshot = {
    elapsedMs: 12_300, nats: 'nats://127.0.0.1:4222', receiverUrl: 'http://127.0.0.1:1', daemonUrl: 'http://127.0.0.1:2',
    workers: { active: 5, draining: 1, stopped: 1, lost: 1 }, beatsIn: 400, pingsOut: 16, intervalMs: 4000,
    minIntervalMs: 1000, maxIntervalMs: 8000,
    sims: [{ id: 'worker-1', instance: 'abcdef0123', phase: 'running', status: 'busy', inflight: 2, beats: 50 }],
    recent: ['  12.1s  worker worker-1 draining'],
  };

  it('shows workers by state, beats in, pings out, the reduction and the interval on one plain line', () => {
    expect(renderLine(snapshot)).toBe(
      '[ 12.3s] workers active 5  draining 1  stopped 1  lost 1 | beats in 400 | pings out 16 | reduction 25.0x | interval 4000 ms',
    );
  });

  it('fits the full view in the terminal width', () => {
    const lines = renderScreen(snapshot, 60);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(60);
    expect(lines.join('\n')).toMatch(/reduction\s+25\.0x/);
  });
});
