import { encodeIdPart } from '@timebox/core';

/**
 * Builds the key names of one store. Every variable part (prefix, aggregate ID, status, label,
 * label value) is escaped with core's part encoding, so it holds no `:`, `{`, `}` or bare `%`:
 * a key splits back into its parts one way only, no value reaches another key, and the only hash
 * tag a key carries is `{shard}`.
 *
 * Layout (`B` is the base: `{shard}:prefix` with a shard, else `prefix`):
 * - `B:m:<id>`   hash: next sequence, trim offset, snapshot, status, labels of one aggregate
 * - `B:e:<id>`   list: the aggregate's stored events, oldest first
 * - `B:ids`      sorted set (all scores 0): encoded IDs of live aggregates, for listing by prefix
 * - `B:s:<status>` sorted set: encoded IDs in that status, scored by entry time
 * - `B:lv:<label>` set: values of the label currently held
 * - `B:lh:<label>:<value>` set: encoded IDs holding that label value
 * - `B:archive`  stream: archived aggregates, read by a consumer group
 * - `B:feed`     stream: one entry per append (ID, first sequence, events), read by subscribers
 * - `B:feed-lease` string with a TTL: present while some process subscribes; appends publish only then
 *
 * The Lua scripts derive status and label keys the same way (see `scripts.ts`).
 */
export class KeySpace {
  /** The part every key of the store starts with (followed by `:`). */
  readonly base: string;
  readonly ids: string;
  readonly archive: string;
  readonly feed: string;
  readonly feedLease: string;

  constructor(prefix: string, shard: string | undefined) {
    const encodedPrefix = encodeIdPart(prefix);
    this.base = shard === undefined ? encodedPrefix : `{${shard}}:${encodedPrefix}`;
    this.ids = `${this.base}:ids`;
    this.archive = `${this.base}:archive`;
    this.feed = `${this.base}:feed`;
    this.feedLease = `${this.base}:feed-lease`;
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

  /** A SCAN `MATCH` pattern for every key of the store, and of no other. */
  get pattern(): string {
    return `${this.base.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}:*`;
  }
}
