import { decodeAggregateId, encodeAggregateId, type AggregateId } from '@timebox/core';

// PostgreSQL text cannot hold U+0000, yet IDs, types, statuses and labels may. Every such string
// is stored through this codec: U+0001 becomes U+0001 U+0002 and U+0000 becomes U+0001 U+0001.
// The code is prefix-free and keeps byte order (11 < 12 < every other character), so equality,
// prefix ranges and `COLLATE "C"` ordering on stored text mean the same as on the original text.
/* eslint-disable no-control-regex -- these patterns exist to find U+0000 and U+0001 */
const NEEDS_ESCAPE = /[\x00\x01]/;
const ESCAPABLE = /[\x00\x01]/g;
const ESCAPED = /\x01([\x01\x02])/g;
/* eslint-enable no-control-regex */

/** Makes `value` storable as PostgreSQL text, reversibly and order-preservingly. */
export function toStoredText(value: string): string {
  return NEEDS_ESCAPE.test(value) ? value.replace(ESCAPABLE, (c) => (c === '\x00' ? '\x01\x01' : '\x01\x02')) : value;
}

/** Reverses `toStoredText`. */
export function fromStoredText(stored: string): string {
  return stored.includes('\x01') ? stored.replace(ESCAPED, (_, c: string) => (c === '\x01' ? '\x00' : '\x01')) : stored;
}

/** The aggregate's key column value: core's collision-free encoding, made storable. */
export function aggregateKey(id: AggregateId): string {
  return toStoredText(encodeAggregateId(id));
}

/** Reverses `aggregateKey`. */
export function aggregateIdFromKey(key: string): string[] {
  return decodeAggregateId(fromStoredText(key));
}

/**
 * The half-open key range `[low, high)` holding exactly the aggregates strictly below `prefix`
 * (their keys start with the prefix key and `:`), under byte-wise (`COLLATE "C"`) comparison:
 * `;` is the byte after `:`.
 */
export function descendantKeyRange(prefix: AggregateId): { low: string; high: string } {
  const key = aggregateKey(prefix);
  return { low: `${key}:`, high: `${key};` };
}
