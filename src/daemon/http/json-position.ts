/**
 * Where JSON text goes wrong. V8's JSON.parse names a position for some
 * errors only ("Unexpected token ',', ..." has none), so a 400 could not say
 * where without this: a small iterative scanner (no recursion, so a deeply
 * nested body cannot overflow the stack) that returns the offset of the
 * first character that breaks the grammar, or undefined for valid JSON.
 */
export function jsonErrorOffset(s: string): number | undefined {
  const n = s.length;
  let i = 0;
  const stack: ('{' | '[')[] = [];
  const ws = () => {
    while (i < n && (s[i] === ' ' || s[i] === '\t' || s[i] === '\n' || s[i] === '\r')) i++;
  };
  const str = (): boolean => {
    i++; // the opening quote
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return true;
      }
      if (c === 0x5c) {
        const e = s[i + 1];
        if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(s.slice(i + 2, i + 6))) i += 6;
        else return false;
      } else if (c < 0x20) {
        return false;
      } else {
        i++;
      }
    }
    return false;
  };
  const key = (): boolean => {
    ws();
    if (s[i] !== '"' || !str()) return false;
    ws();
    if (s[i] !== ':') return false;
    i++;
    return true;
  };
  const number = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

  for (;;) {
    // A value starts here.
    ws();
    if (i >= n) return i;
    const c = s[i]!;
    if (c === '{' || c === '[') {
      i++;
      ws();
      if (s[i] !== (c === '{' ? '}' : ']')) {
        stack.push(c);
        if (c === '{' && !key()) return i;
        continue;
      }
      i++;
    } else if (c === '"') {
      if (!str()) return i;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      number.lastIndex = i;
      if (!number.test(s)) return i;
      i = number.lastIndex;
    } else if (s.startsWith('true', i) || s.startsWith('null', i)) {
      i += 4;
    } else if (s.startsWith('false', i)) {
      i += 5;
    } else {
      return i;
    }
    // A value ended: close what it ends, or go on to the next member.
    for (;;) {
      ws();
      const top = stack.at(-1);
      if (top === undefined) return i < n ? i : undefined;
      if (s[i] === ',') {
        i++;
        if (top === '{' && !key()) return i;
        break;
      }
      if (s[i] === (top === '{' ? '}' : ']')) {
        stack.pop();
        i++;
        continue;
      }
      return i;
    }
  }
}
