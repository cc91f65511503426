/** Config values that would put a secret in a log are refused, with what, where and why. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactConfig, type ConfigIssue } from '../../src/config/index.js';
import { redactUrl } from '../../src/util/redact-url.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hbagg-secrets-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function issuesOf(opts: Parameters<typeof loadConfig>[0]): ConfigIssue[] {
  try {
    loadConfig(opts);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).issues];
  }
  throw new Error('expected loadConfig to throw');
}

describe('secrets in the config', () => {
  it('refuses a platform.url with a user and password, naming the key, without printing the password', () => {
    const issues = issuesOf({ env: { HBAGG_PLATFORM_URL: 'https://ops:hunter22@platform.example/v1/hb' } });
    expect(issues).toHaveLength(1);
    expect(issues[0]!.key).toBe('HBAGG_PLATFORM_URL');
    expect(issues[0]!.message).toMatch(/user or password.*platform\.token/);
    expect(JSON.stringify(issues)).not.toContain('hunter22');
  });

  it('refuses a token with an interior CR/LF from the environment, naming the variable and the position, not the token', () => {
    const issues = issuesOf({ env: { HBAGG_PLATFORM_URL: 'http://127.0.0.1:1/p', HBAGG_PLATFORM_TOKEN: 'abcd\r\nefgh' } });
    expect(issues).toEqual([
      { key: 'HBAGG_PLATFORM_TOKEN', message: expect.stringMatching(/control character \(CR\) at position 5/) },
    ]);
    expect(JSON.stringify(issues)).not.toMatch(/abcd|efgh/);
  });

  it('refuses a control character in any string of the file, under its dotted key, once', () => {
    const file = path.join(tmp, 'ctl.json');
    fs.writeFileSync(file, JSON.stringify({ nats: { name: 'a\tb', subject_prefix: 'hb\n' }, http: { token: 'x\u0000y' } }));
    const issues = issuesOf({ file, env: {} });
    expect(issues.map((i) => i.key).sort()).toEqual(['http.token', 'nats.name', 'nats.subject_prefix']);
    expect(issues.find((i) => i.key === 'nats.name')!.message).toMatch(/control character \(tab\) at position 2/);
  });

  it('refuses a token file with a line break inside the token (trailing newlines are fine)', () => {
    const bad = path.join(tmp, 'bad-token');
    fs.writeFileSync(bad, 'first-line\nsecond-line\n');
    const issues = issuesOf({ env: { HBAGG_PLATFORM_TOKEN_FILE: bad } });
    expect(issues).toEqual([{ key: 'HBAGG_PLATFORM_TOKEN_FILE', message: expect.stringMatching(/control character \(LF\)/) }]);
    expect(JSON.stringify(issues)).not.toContain('second-line');
    const good = path.join(tmp, 'good-token');
    fs.writeFileSync(good, 'only-line\n');
    expect(loadConfig({ env: { HBAGG_PLATFORM_TOKEN_FILE: good } }).platform.token).toBe('only-line');
  });

  it('prints the platform URL with its query string redacted', () => {
    const cfg = loadConfig({ env: { HBAGG_PLATFORM_URL: 'https://platform.example/v1/hb?api_key=k3y-v4lue' } });
    expect(JSON.stringify(redactConfig(cfg))).not.toContain('k3y-v4lue');
    expect((redactConfig(cfg) as { platform: { url: string } }).platform.url).toBe('https://platform.example/v1/hb?[redacted]');
  });
});

describe('redactUrl', () => {
  it('replaces userinfo and the query, keeps scheme, host, port and path', () => {
    expect(redactUrl('http://u:p@h.example:8080/a/b?x=1#frag')).toBe('http://redacted@h.example:8080/a/b?[redacted]');
    expect(redactUrl('https://h.example/p')).toBe('https://h.example/p');
    expect(redactUrl('not a url?token=1')).toBe('not a url?[redacted]');
  });
});
