/**
 * URLs as they may be printed: in logs, error messages and `check-config`.
 * A query string (`?api_key=...`) and userinfo (`user:pass@`) often carry
 * secrets, so both are replaced; the scheme, host, port and path stay, since
 * they are what an operator needs to recognise the address.
 */

/** `url` without secrets: userinfo becomes `redacted@`, a query becomes `?[redacted]`, a fragment is dropped. */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Unparseable: cut at the first `?` or `#` and hide anything before an `@` after the scheme.
    return url.replace(/[?#].*$/s, (m) => (m.startsWith('?') ? '?[redacted]' : '')).replace(/\/\/[^/@]*@/, '//redacted@');
  }
  const hadUserinfo = parsed.username !== '' || parsed.password !== '';
  parsed.username = '';
  parsed.password = '';
  const hadQuery = parsed.search !== '';
  parsed.search = '';
  parsed.hash = '';
  let out = parsed.toString();
  if (hadUserinfo) out = out.replace('//', '//redacted@');
  return hadQuery ? `${out}?[redacted]` : out;
}
