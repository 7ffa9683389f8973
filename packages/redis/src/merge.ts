/**
 * Merges lists that are each sorted by `compare` into one sorted list (a k-way merge over a heap of
 * the lists' heads). Items that compare equal keep the order of their lists, so a list's own order
 * is never changed even when `compare` does not fully order it. Stops after `limit` items.
 */
export function mergeSorted<T>(lists: readonly (readonly T[])[], compare: (a: T, b: T) => number, limit = Infinity): T[] {
  const nonEmpty = lists.filter((list) => list.length > 0);
  if (nonEmpty.length === 1) return (nonEmpty[0] as readonly T[]).slice(0, limit);
  // A heap of [list, offset] heads ordered by the head item, then by the list's place.
  const heads: { list: number; at: number }[] = nonEmpty.map((_, list) => ({ list, at: 0 }));
  const item = (head: { list: number; at: number }): T => (nonEmpty[head.list] as readonly T[])[head.at] as T;
  const before = (a: { list: number; at: number }, b: { list: number; at: number }): boolean => {
    const order = compare(item(a), item(b));
    return order < 0 || (order === 0 && a.list < b.list);
  };
  const siftDown = (from: number): void => {
    let i = from;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heads.length && before(heads[left]!, heads[smallest]!)) smallest = left;
      if (right < heads.length && before(heads[right]!, heads[smallest]!)) smallest = right;
      if (smallest === i) return;
      [heads[i], heads[smallest]] = [heads[smallest]!, heads[i]!];
      i = smallest;
    }
  };
  for (let i = Math.floor(heads.length / 2) - 1; i >= 0; i--) siftDown(i);
  const merged: T[] = [];
  while (heads.length > 0 && merged.length < limit) {
    const top = heads[0]!;
    merged.push(item(top));
    top.at++;
    if (top.at >= (nonEmpty[top.list] as readonly T[]).length) {
      const last = heads.pop()!;
      if (heads.length === 0) break;
      heads[0] = last;
    }
    siftDown(0);
  }
  return merged;
}

/**
 * Orders strings by Unicode code point, which is the byte order of their UTF-8 forms: the order of
 * Redis's lexicographic ranges (`ZRANGEBYLEX`, and members of equal score).
 */
export function compareCodePoints(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Code units order code points except that surrogates (U+D800–DFFF, halves of code points
    // above U+FFFF) sort below U+E000–FFFF in UTF-16 but above them as code points.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys && (x >= 0xe000 || y >= 0xe000)) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}
