/**
 * Format checks for config strings: each returns an error message, or
 * undefined when the value is fine. Kept apart from the zod schema so the
 * loader can reuse `parseHostPort` to split `http.listen`, and so each rule
 * can be tested on its own.
 */
import { redactUrl } from '../util/redact-url.js';

export interface HostPort {
  /** Host without IPv6 brackets, as `net.Server.listen()` wants it. */
  host: string;
  port: number;
}

const HOSTNAME = /^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?$/;
const IPV6 = /^[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?$/;
const PORT = /^\d{1,5}$/;

/** Splits `host:port` or `[v6]:port`; returns undefined when malformed. */
export function parseHostPort(value: string): HostPort | undefined {
  let host: string;
  let portText: string;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0 || value[close + 1] !== ':') return undefined;
    host = value.slice(1, close);
    portText = value.slice(close + 2);
    if (!IPV6.test(host) || !host.includes(':')) return undefined;
  } else {
    const colon = value.lastIndexOf(':');
    if (colon < 0) return undefined;
    host = value.slice(0, colon);
    portText = value.slice(colon + 1);
    // A bare IPv6 address is ambiguous (which colon starts the port?), so it needs brackets.
    if (host.includes(':') || !HOSTNAME.test(host)) return undefined;
  }
  if (!PORT.test(portText)) return undefined;
  const port = Number(portText);
  return port <= 65535 ? { host, port } : undefined;
}

export function checkListen(value: string): string | undefined {
  return parseHostPort(value)
    ? undefined
    : `expected host:port with a port from 0 to 65535 (IPv6 as [::1]:9470), got ${JSON.stringify(value)}`;
}

/** nats.js accepts `nats://`, `tls://` URLs and bare `host:port`. */
export function checkNatsServer(value: string): string | undefined {
  const bad = `expected nats://host:port, tls://host:port or host:port, got ${JSON.stringify(hideUserinfo(value))}`;
  if (!value.includes('://')) return parseHostPort(value) ? undefined : bad;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return bad;
  }
  if (url.protocol !== 'nats:' && url.protocol !== 'tls:') return bad;
  if (url.hostname === '') return bad;
  // The NATS client ignores credentials in a URL; connecting would fail with an opaque authorization error.
  if (url.username !== '' || url.password !== '') {
    return `credentials in a server URL are not used by the NATS client; put them in nats.user/nats.pass (HBAGG_NATS_USER/HBAGG_NATS_PASS) or nats.token, got ${JSON.stringify(hideUserinfo(value))}`;
  }
  return undefined;
}

export function checkHttpUrl(value: string): string | undefined {
  const bad = `expected an http:// or https:// URL, got ${JSON.stringify(redactUrl(value))}`;
  try {
    const url = new URL(value);
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') return bad;
    // fetch refuses such URLs, quoting them whole (password included) in its error, on every ping.
    if (url.username !== '' || url.password !== '') {
      return `a user or password in the URL is not supported (it would be printed in errors); put the credential in platform.token or platform.token_file (HBAGG_PLATFORM_TOKEN or HBAGG_PLATFORM_TOKEN_FILE), got ${JSON.stringify(redactUrl(value))}`;
    }
    return undefined;
  } catch {
    return bad;
  }
}

const CONTROL_NAMES: Record<string, string> = { '\r': 'CR', '\n': 'LF', '\t': 'tab', '\u0000': 'NUL', '\u007f': 'DEL' };

/**
 * A control character in a config value: a CR/LF in a token breaks the
 * Authorization header (and fetch's error quotes the header whole). The
 * message gives its name and 1-based position, never the value (it may be a secret).
 */
export function checkNoControlChars(value: string): string | undefined {
  const at = value.search(/[\u0000-\u001f\u007f]/);
  if (at < 0) return undefined;
  const ch = value[at]!;
  const name = CONTROL_NAMES[ch] ?? `U+${ch.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
  return `contains a control character (${name}) at position ${at + 1}; remove it (a value pasted with its line ending is the usual cause)`;
}

/**
 * The prefix becomes the first tokens of every subject (`<prefix>.beat.<id>`),
 * so a wildcard, a space or an empty token would change what we subscribe to.
 */
export function checkSubjectPrefix(value: string): string | undefined {
  const tokens = value.split('.');
  for (const token of tokens) {
    if (token === '') return `expected dot-separated NATS tokens with none empty, got ${JSON.stringify(value)}`;
    if (/[\s*>]/.test(token) || /[\u0000-\u001f\u007f]/.test(token)) {
      return `NATS subject tokens may not contain whitespace, "*" or ">", got ${JSON.stringify(value)}`;
    }
  }
  return undefined;
}

/** Replaces a URL's password so that an error message or a dump never carries it. */
export function hideUserinfo(value: string): string {
  if (!value.includes('://') || !value.includes('@')) return value;
  try {
    const url = new URL(value);
    if (url.password === '' && url.username === '') return value;
    if (url.password !== '') url.password = 'redacted';
    else url.username = 'redacted'; // nats://<token>@host puts the token in the user slot
    return url.toString();
  } catch {
    return value.replace(/\/\/[^@/]*@/, '//redacted@');
  }
}
