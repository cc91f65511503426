/**
 * The UTF-8 size of `JSON.stringify(value)` for a value that came out of
 * `JSON.parse`, computed without recursion. JSON.stringify recurses, so a
 * deeply nested value (a 64 KiB HTTP body holds 32,000 levels) throws a
 * RangeError from the stack; this walks an explicit stack instead, and stops
 * counting once the size passes `limit` (the answer is then some size > limit).
 */
export function jsonByteLength(value: unknown, limit = Infinity): number {
  let size = 0;
  const todo: unknown[] = [value];
  while (todo.length > 0 && size <= limit) {
    const v = todo.pop();
    if (typeof v === 'string') {
      size += Buffer.byteLength(JSON.stringify(v));
    } else if (Array.isArray(v)) {
      size += 2 + Math.max(0, v.length - 1);
      for (let i = v.length - 1; i >= 0; i--) todo.push(v[i]);
    } else if (typeof v === 'object' && v !== null) {
      const keys = Object.keys(v);
      size += 2 + Math.max(0, keys.length - 1);
      for (const k of keys) {
        size += Buffer.byteLength(JSON.stringify(k)) + 1;
        todo.push((v as Record<string, unknown>)[k]);
      }
    } else {
      // number (non-finite ones print as null), boolean, null
      size += (JSON.stringify(v) ?? 'null').length;
    }
  }
  return size;
}
