import { createRequire } from 'node:module';
import type * as btree from 'sorted-btree';
import type { ListPage } from '../backend.js';

// sorted-btree is CommonJS exporting the class as `exports.default`. ESM loaders disagree on what a
// default import of that is (Node gives the exports object, bundlers the class); require() does not.
const BTree = (createRequire(import.meta.url)('sorted-btree') as { default: typeof btree.default }).default;

/** A B+ tree: ordered keys with O(log n) insert, delete and seek, so a page costs its own size. */
export type SortedTree<K, V> = btree.default<K, V>;

/** An empty tree ordered by `compare`. */
export function sortedTree<K, V>(compare: (a: K, b: K) => number): SortedTree<K, V> {
  return new BTree<K, V>(undefined, compare);
}

/** Where a page of keys starts and stops. */
export interface KeyRange<K> {
  /** Start after this key (exclusive); from `low` (inclusive) when absent. */
  readonly after?: K | undefined;
  /** The first key of the range, inclusive; from the lowest key when absent. */
  readonly low?: K | undefined;
  /** Stop before this key (exclusive); to the end when absent. */
  readonly high?: K | undefined;
}

/**
 * Up to `limit` entries of `tree` in the range, in key order, read by seeking to the start, so the
 * cost is the page's, not the tree's. `next` is the last key when another entry follows.
 */
export function pageOf<K, V, T>(
  tree: SortedTree<K, V>,
  range: KeyRange<K>,
  limit: number,
  compare: (a: K, b: K) => number,
  item: (key: K, value: V) => T,
): { items: T[]; last: K | undefined; more: boolean } {
  const start = range.after !== undefined && (range.low === undefined || compare(range.after, range.low) >= 0) ? range.after : range.low;
  const skipStart = start !== undefined && start === range.after;
  const items: T[] = [];
  let last: K | undefined;
  for (const [key, value] of tree.entries(start)) {
    if (skipStart && compare(key, start) === 0) continue;
    if (range.high !== undefined && compare(key, range.high) >= 0) return { items, last, more: false };
    if (items.length === limit) return { items, last, more: true };
    items.push(item(key, value));
    last = key;
  }
  return { items, last, more: false };
}

/** A backend page from `pageOf`'s result, with the last key encoded as the continuation. */
export function listPage<K, T>(page: { items: T[]; last: K | undefined; more: boolean }, encode: (key: K) => string): ListPage<T> {
  return page.more && page.last !== undefined ? { items: page.items, next: encode(page.last) } : { items: page.items };
}
