import { describe, expect, it } from 'vitest';
import { compareCodePoints, mergeSorted } from '../src/merge.js';
import { crc16, MAX_SHARDS, shardOf, shardTags, SLOT_COUNT, slotOfTag } from '../src/slots.js';
import { StoreKeys } from '../src/store-keys.js';

describe('shard placement', () => {
  it('hashes tags with Redis Cluster’s CRC16 (XMODEM)', () => {
    // The check value of CRC16/XMODEM.
    expect(crc16('123456789')).toBe(0x31c3);
    // What `CLUSTER KEYSLOT` answers (test/sharded-cluster.test.ts compares with a real cluster).
    expect(slotOfTag('foo')).toBe(12182);
  });

  it('keeps every aggregate in the shard it was always in (the hash is part of the data format)', () => {
    const placed = ['order:1', 'order:2', 'w:0:0', '%C3%A4', 'ä:b'].map((id) => [shardOf(id, 1000), shardOf(id, 16)]);
    expect(placed).toEqual([
      [311, 15],
      [174, 6],
      [668, 4],
      [299, 3],
      [93, 13],
    ]);
    expect(shardOf('anything', 1)).toBe(0);
  });

  it('spreads IDs that differ in a few characters over every shard', () => {
    const counts = new Array<number>(16).fill(0);
    for (let w = 0; w < 16; w++) for (let i = 0; i < 64; i++) counts[shardOf(`w:${w}:${i}`, 16)]!++;
    // 64 per shard on average; a linear hash (a bare CRC) leaves half of them empty.
    for (const count of counts) expect(count).toBeGreaterThan(32);
  });

  it('gives shard i a tag in the i-th equal range of slots, each with the count and a ":"', () => {
    for (const count of [1, 3, 16, 48, 1000, MAX_SHARDS]) {
      const tags = shardTags(count);
      expect(new Set(tags).size).toBe(count);
      tags.forEach((tag, i) => {
        expect(tag.startsWith(`${count}:`)).toBe(true);
        expect(Math.floor((slotOfTag(tag) * count) / SLOT_COUNT)).toBe(i);
      });
    }
  });

  it('names keys of no other store: other counts, one-slot stores and other prefixes stay out of the pattern', () => {
    const keys = new StoreKeys({ prefix: 'p', shards: 16 });
    const pattern = new RegExp(`^${keys.pattern.replace(/[{}]/g, (c) => `\\${c}`).replace(/\*/g, '.*')}$`);
    for (const slot of keys.slots) expect(slot.meta('x')).toMatch(pattern);
    expect(new StoreKeys({ prefix: 'p', shards: 1 }).home.meta('x')).not.toMatch(pattern);
    expect(new StoreKeys({ prefix: 'p', shards: 160 }).home.meta('x')).not.toMatch(pattern);
    expect(new StoreKeys({ prefix: 'q', shards: 16 }).home.meta('x')).not.toMatch(pattern);
    expect(new StoreKeys({ prefix: 'p', shard: '16' }).home.meta('x')).not.toMatch(pattern);
  });
});

describe('merging sorted lists', () => {
  it('merges, keeps each list’s order among equal items, and stops at the limit', () => {
    const lists = [
      [
        { k: 1, from: 'a' },
        { k: 3, from: 'a' },
        { k: 3, from: 'a2' },
      ],
      [],
      [
        { k: 0, from: 'c' },
        { k: 3, from: 'c' },
        { k: 9, from: 'c' },
      ],
    ];
    const merged = mergeSorted(lists, (x, y) => x.k - y.k);
    expect(merged.map((item) => `${item.k}${item.from}`)).toEqual(['0c', '1a', '3a', '3a2', '3c', '9c']);
    expect(mergeSorted(lists, (x, y) => x.k - y.k, 2)).toHaveLength(2);
  });

  it('orders strings as Redis orders their bytes (UTF-8, so by code point)', () => {
    const words = ['b', 'a', '\u{1F600}', '\uFFFD', 'ab', '', '\uE000', 'z'];
    const byBytes = [...words].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect([...words].sort(compareCodePoints)).toEqual(byBytes);
  });
});
