import { InvalidAggregateIdError } from './errors.js';
import { hasLoneSurrogate, LONE_SURROGATE_PROBLEM } from './text.js';

/**
 * Identifies an aggregate: a non-empty, ordered list of string parts, such as `["order", "123"]`.
 * A part may hold any character; backends encode parts so that no two IDs collide.
 */
export type AggregateId = readonly string[];

/** Throws `InvalidAggregateIdError` unless `id` is a non-empty array of well-formed strings. */
export function assertAggregateId(id: unknown): asserts id is AggregateId {
  if (!Array.isArray(id)) throw new InvalidAggregateIdError('expected an array of string parts', id);
  if (id.length === 0) throw new InvalidAggregateIdError('it needs at least one part', id);
  assertParts(id, 'part');
}

/**
 * Validates `id` and returns the store's own frozen copy, so later changes to the caller's array
 * cannot reach stored data or an event's `aggregateId`.
 */
export function ownAggregateId(id: unknown): AggregateId {
  assertAggregateId(id);
  return Object.freeze([...id]);
}

/** Throws `InvalidAggregateIdError` unless `prefix` is an array of well-formed strings (empty allowed). */
export function assertIdPrefix(prefix: unknown): asserts prefix is AggregateId {
  if (!Array.isArray(prefix)) throw new InvalidAggregateIdError('a prefix must be an array of string parts', prefix);
  assertParts(prefix, 'prefix part');
}

function assertParts(parts: readonly unknown[], what: string): void {
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (typeof part !== 'string') throw new InvalidAggregateIdError(`${what} ${i} is not a string`, part);
    if (hasLoneSurrogate(part)) throw new InvalidAggregateIdError(`${what} ${i} ${LONE_SURROGATE_PROBLEM}`, part);
  }
}

// Characters that an encoded part never contains literally: the separator, the escape itself,
// and the braces Redis reads as a hash tag.
const RESERVED = /[%:{}]/g;
const HAS_RESERVED = /[%:{}]/;
const ESCAPES: Record<string, string> = { '%': '%25', ':': '%3A', '{': '%7B', '}': '%7D' };

/** Encodes one part so that it holds no `%`, `:`, `{` or `}`. */
export function encodeIdPart(part: string): string {
  // Most parts need no escaping; testing first avoids building a new string on the hot path.
  return HAS_RESERVED.test(part) ? part.replace(RESERVED, (c) => ESCAPES[c] as string) : part;
}

/**
 * Encodes an ID as one string that is unique to it: each part percent-escapes `%`, `:`, `{` and
 * `}`, and parts are joined by `:`. Backends use it as a key; `decodeAggregateId` reverses it.
 * Because encoded parts hold no `:`, ID `a` is a part-wise prefix of ID `b` exactly when
 * `encode(b)` equals `encode(a)` or starts with `encode(a) + ":"` (see `hasIdPrefix`).
 */
export function encodeAggregateId(id: AggregateId): string {
  let out = encodeIdPart(id[0] as string);
  for (let i = 1; i < id.length; i++) out += ':' + encodeIdPart(id[i] as string);
  return out;
}

/** Reverses `encodeAggregateId`. */
export function decodeAggregateId(key: string): string[] {
  return key.split(':').map((part) => (part.includes('%') ? decodeURIComponentSafe(part) : part));
}

function decodeURIComponentSafe(part: string): string {
  return part.replace(/%(25|3A|7B|7D)/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** True when the ID (as encoded by `encodeAggregateId`) starts with the parts of `prefix`. */
export function hasIdPrefix(encodedId: string, prefix: AggregateId): boolean {
  if (prefix.length === 0) return true;
  const encodedPrefix = encodeAggregateId(prefix);
  return encodedId === encodedPrefix || encodedId.startsWith(encodedPrefix + ':');
}

/** True when both IDs have the same parts. */
export function sameAggregateId(a: AggregateId, b: AggregateId): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
