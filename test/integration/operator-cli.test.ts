/** What the hbagg command tells an operator about a config it cannot run with. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnHbagg } from '../../testing/index.js';

async function hbagg(args: string[], env: Record<string, string> = {}) {
  const child = spawnHbagg(args, env);
  const code = await child.exited;
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

describe('operator papercuts on the command line', () => {
  it('check-config checks what run needs by default, and says which mode it checked', async () => {
    const r = await hbagg(['check-config']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('platform.url: required to run the daemon');
    expect(r.stderr).toContain('checked for "hbagg run"');
  });

  it('check-config --for file checks the values alone and says what run would still need', async () => {
    const r = await hbagg(['check-config', '--for', 'file']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('"hbagg run" also needs platform.url');
  });

  it('check-config refuses a state_dir under a file before run would', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hbagg-sd-'));
    writeFileSync(path.join(dir, 'file'), 'x');
    const r = await hbagg(['check-config'], { HBAGG_PLATFORM_URL: 'http://127.0.0.1:1/p', HBAGG_STATE_DIR: path.join(dir, 'file', 'state') });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/state_dir: ".*file" is a file, not a directory/);
  });

  it('warns about an unknown HBAGG_ variable, naming the closest known one', async () => {
    const r = await hbagg(['check-config', '--for', 'file'], { HBAGG_MAX_INTERVAL: '5000' });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('hbagg: warning: HBAGG_MAX_INTERVAL: unknown variable, ignored; did you mean HBAGG_MAX_INTERVAL_MS?');
  });

  it('run with an unusable state_dir says what failed, where, and what to do, not a raw errno string', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hbagg-sd-'));
    writeFileSync(path.join(dir, 'file'), 'x');
    const stateDir = path.join(dir, 'file', 'state');
    const r = await hbagg(['run'], {
      HBAGG_PLATFORM_URL: 'http://127.0.0.1:1/p',
      HBAGG_STATE_DIR: stateDir,
      HBAGG_HTTP_LISTEN: '127.0.0.1:0',
      HBAGG_NATS_URL: 'nats://127.0.0.1:1',
    });
    expect(r.code).toBe(1);
    const fatal = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: string; msg: string }).find((l) => l.level === 'fatal');
    expect(fatal?.msg).toBe(
      `state_dir ${JSON.stringify(stateDir)}: cannot create the directory: a part of the path is a file, not a directory. ` +
        'Remove or rename that file, or set state_dir (HBAGG_STATE_DIR) to a directory it can write.',
    );
  });
});
