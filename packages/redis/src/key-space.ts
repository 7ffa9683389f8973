import { encodeIdPart } from '@timebox/core';

/**
 * Builds the key names of one slot of a store. Every variable part (prefix, aggregate ID, status, label,
 * label value) is escaped with core's part encoding, so it holds no `:`, `{`, `}` or bare `%`:
 * a key splits back into its parts one way only, no value reaches another key, and the only hash
 * tag a key carries is `{shard}` (or a shard's tag).
 *
 * One `KeySpace` names the keys of one slot: the whole store's with `shard` (or without a
 * Cluster), one shard's with `shards` (see `StoreKeys`).
 *
 * Layout (`B` is the base: `{shard}:prefix` with a shard or a shard's tag, else `prefix`):
 * - `B:m:<id>`   hash: next sequence, trim offset, life start, snapshot, status and the sort key
 *   of when it was entered, labels of one aggregate; after an archive only next sequence, trim
 *   offset and life start (the next life's)
 * - `B:e:<id>`   list: the aggregate's stored events (each prefixed with its position), oldest first
 * - `B:ids`      sorted set (all scores 0): encoded IDs of live aggregates, for listing by prefix
 * - `B:s:<status>` sorted set (all scores 0): `<entry time key>:<id>` of the aggregates in that
 *   status (see `statusKey`), so that its byte order is entry time, then ID, and pages are lex ranges
 * - `B:lv:<label>` sorted set (all scores 0): values of the label currently held
 * - `B:lh:<label>:<value>` sorted set (all scores 0): encoded IDs holding that label value
 * - `B:archive`  stream: archived aggregates, read by a consumer group
 * - `B:feed`     stream: one entry per append (ID, first sequence, events), read by subscribers
 * - `B:feed-lease` string with a TTL: present while some process subscribes; appends publish only then
 * - `B:pos`      string: the last position given in this slot's log partition
 * - `B:log`      stream: this slot's log partition, one entry per append, ID `<last position>-0`,
 *   fields `a` encoded ID, `s` first sequence, `n` event count
 * - `B:pr:<name>` hash: one projection's record (checkpoint, lease holder and expiry, generation, error)
 *
 * The Lua scripts derive status and label keys the same way (see `scripts.ts`).
 */
export class KeySpace {
  /** The part every key of the slot starts with (followed by `:`). */
  readonly base: string;
  readonly ids: string;
  readonly archive: string;
  readonly feed: string;
  readonly feedLease: string;
  /** The slot's log partition: its position counter. */
  readonly position: string;
  /** The slot's log partition: its log stream. */
  readonly log: string;

  /**
   * @param prefix - the store's namespace
   * @param shard - the hash tag (without braces) every key carries, if any
   */
  constructor(prefix: string, shard: string | undefined) {
    const encodedPrefix = encodeIdPart(prefix);
    this.base = shard === undefined ? encodedPrefix : `{${shard}}:${encodedPrefix}`;
    this.ids = `${this.base}:ids`;
    this.archive = `${this.base}:archive`;
    this.feed = `${this.base}:feed`;
    this.feedLease = `${this.base}:feed-lease`;
    this.position = `${this.base}:pos`;
    this.log = `${this.base}:log`;
  }

  meta(encodedId: string): string {
    return `${this.base}:m:${encodedId}`;
  }

  events(encodedId: string): string {
    return `${this.base}:e:${encodedId}`;
  }

  status(status: string): string {
    return `${this.base}:s:${encodeIdPart(status)}`;
  }

  labelValues(label: string): string {
    return `${this.base}:lv:${encodeIdPart(label)}`;
  }

  labelHolders(label: string, value: string): string {
    return `${this.base}:lh:${encodeIdPart(label)}:${encodeIdPart(value)}`;
  }

  /** A projection's record (they live in a store's first slot). */
  projection(name: string): string {
    return `${this.base}:pr:${encodeIdPart(name)}`;
  }

  /** A SCAN `MATCH` pattern for every key of the slot, and of no other slot or store. */
  get pattern(): string {
    return `${this.base.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}:*`;
  }
}

/** Length of a status sort key (`statusKey`). */
export const STATUS_KEY_LENGTH = 17;
const OFFSET = Number.MAX_SAFE_INTEGER;

/**
 * A time (epoch ms, any safe integer) as 17 characters whose byte order is the times' order: `p`
 * and 16 digits for a time ≥ 0, `n` and the 16 digits of `MAX_SAFE_INTEGER + time` below 0.
 */
export function statusKey(time: number): string {
  return time >= 0 ? `p${String(time).padStart(16, '0')}` : `n${String(OFFSET + time).padStart(16, '0')}`;
}

/** Reverses `statusKey`; undefined for text that is not one. */
export function statusTime(key: string): number | undefined {
  if (!/^[pn]\d{16}$/.test(key)) return undefined;
  const digits = Number(key.slice(1));
  return key[0] === 'p' ? digits : digits - OFFSET;
}
