/**
 * Runs the real `hbagg` command in a child process (through tsx, so the
 * sources are tested, not a stale build), with only the environment given.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export const CLI = path.resolve(import.meta.dirname, '../src/cli.ts');

export interface HbaggProcess {
  proc: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  out(): string;
  stdout(): string;
  stderr(): string;
  /** The exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

export function spawnHbagg(args: string[], env: Record<string, string> = {}): HbaggProcess {
  const proc = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let all = '';
  proc.stdout?.on('data', (c: Buffer) => ((stdout += c.toString()), (all += c.toString())));
  proc.stderr?.on('data', (c: Buffer) => ((stderr += c.toString()), (all += c.toString())));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, out: () => all, stdout: () => stdout, stderr: () => stderr, exited };
}
