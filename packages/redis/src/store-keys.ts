import { encodeIdPart } from '@timebox/core';
import { KeySpace } from './key-space.js';
import { shardOf, shardTags, slotOfTag } from './slots.js';

/** Which keys a store has: its namespace and how it is placed on slots. */
export interface StorePlacement {
  /** The store's namespace. Default `timebox`. */
  readonly prefix?: string | undefined;
  /** One hash tag for the whole store (one slot). */
  readonly shard?: string | undefined;
  /** How many shards (hash tags) the store's aggregates are spread over. */
  readonly shards?: number | undefined;
}

/**
 * The slots of one store: one `KeySpace` without sharding (the whole store under one base, with
 * or without `shard`), or one per shard with `shards`, each under the shard's hash tag (see
 * `shardTags`). An aggregate's keys, and the index entries and log entry its appends write, all
 * live in the slot of its shard (`shardOf`), so every append is one script in one slot. Each slot
 * is also one partition of the store's log. Projection records live in the first slot.
 */
export class StoreKeys {
  readonly slots: readonly KeySpace[];
  /** With `shards`, each slot's Redis Cluster hash slot (from its tag); otherwise empty. */
  readonly hashSlots: readonly number[];
  /** Whether the store was opened with `shards` (even `shards: 1`). */
  readonly sharded: boolean;
  readonly #prefix: string;

  constructor({ prefix = 'timebox', shard, shards }: StorePlacement) {
    this.#prefix = prefix;
    this.sharded = shards !== undefined;
    const tags = shards === undefined ? [] : shardTags(shards);
    this.slots = shards === undefined ? [new KeySpace(prefix, shard)] : tags.map((tag) => new KeySpace(prefix, tag));
    this.hashSlots = tags.map(slotOfTag);
  }

  /** The slot that holds projection records (and, unsharded, everything). */
  get home(): KeySpace {
    return this.slots[0] as KeySpace;
  }

  /** The index of the slot (log partition) an aggregate lives in. */
  indexOf(encodedId: string): number {
    return this.slots.length === 1 ? 0 : shardOf(encodedId, this.slots.length);
  }

  /** The slot an aggregate lives in. */
  of(encodedId: string): KeySpace {
    return this.slots[this.indexOf(encodedId)] as KeySpace;
  }

  /**
   * A SCAN `MATCH` pattern for every key of the store and of no other. A sharded store's tags are
   * `<count>:<n>` and hold no `}`, so `{<count>:*}` stops at the tag's end, and no one-slot store's
   * tag holds `:`.
   */
  get pattern(): string {
    if (!this.sharded) return this.home.pattern;
    const encodedPrefix = encodeIdPart(this.#prefix).replace(/[*?[\]\\]/g, (c) => `\\${c}`);
    return `{${this.slots.length}:*}:${encodedPrefix}:*`;
  }
}
