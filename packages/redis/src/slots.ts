/** How many hash slots a Redis Cluster has. */
export const SLOT_COUNT = 16_384;

/** The most shards a store may have: more than one per slot would only repeat slots. */
export const MAX_SHARDS = SLOT_COUNT;

// CRC16/XMODEM (polynomial 0x1021, initial value 0, no reflection), the hash Redis Cluster uses
// for key slots; one table entry per byte value, computed bit by bit from the polynomial.
const TABLE = new Uint16Array(256);
for (let byte = 0; byte < 256; byte++) {
  let crc = byte << 8;
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  TABLE[byte] = crc;
}

/** CRC16/XMODEM of the UTF-8 bytes of `text`. */
export function crc16(text: string): number {
  const bytes = Buffer.from(text, 'utf8');
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ byte) & 0xff] as number);
  return crc;
}

/** The cluster slot of a key whose hash tag is `tag` (what `CLUSTER KEYSLOT {tag}…` answers). */
export function slotOfTag(tag: string): number {
  return crc16(tag) % SLOT_COUNT;
}

/**
 * The shard an aggregate belongs to: the 32-bit FNV-1a hash of the UTF-8 bytes of its encoded ID
 * (core's `encodeAggregateId`), mixed by MurmurHash3's 32-bit finalizer (`fmix32`), modulo the
 * shard count. Stable: it depends on nothing but the ID and the count, so every process agrees,
 * today and after an upgrade. (A bare CRC, Redis's own slot hash, is linear: IDs that differ in a
 * few characters, such as `w:1:2` and `w:3:4`, share its low bits and would crowd a few shards.)
 */
export function shardOf(encodedId: string, shards: number): number {
  if (shards === 1) return 0;
  let hash = 0x811c9dc5;
  const add = (byte: number): void => {
    hash = Math.imul(hash ^ byte, 0x01000193);
  };
  let ascii = true;
  for (let i = 0; i < encodedId.length && ascii; i++) ascii = encodedId.charCodeAt(i) < 0x80;
  if (ascii) {
    for (let i = 0; i < encodedId.length; i++) add(encodedId.charCodeAt(i));
  } else {
    for (const byte of Buffer.from(encodedId, 'utf8')) add(byte);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return (hash >>> 0) % shards;
}

const tagsByCount = new Map<number, readonly string[]>();

/**
 * The hash tags of a store with `count` shards: shard `i`'s tag is the first of the candidates
 * `<count>:0`, `<count>:1`, `<count>:2`… whose slot falls in the `i`-th of `count` equal ranges of
 * the slot space. Masters of a cluster own contiguous ranges of slots (as `redis-cli --cluster
 * create` and `rebalance` assign them), so shards spread over the masters as evenly as the count
 * allows. Every tag holds `:`, which the `shard` option refuses, so a sharded store never shares
 * keys with a one-slot store; and the count is part of every tag, so stores with different counts
 * never share keys either. Computed once per count (about count × ln(count) CRCs).
 */
export function shardTags(count: number): readonly string[] {
  const cached = tagsByCount.get(count);
  if (cached !== undefined) return cached;
  const tags = new Array<string | undefined>(count).fill(undefined);
  let missing = count;
  // Every range holds at least one slot (count ≤ SLOT_COUNT) and the candidates' CRCs reach every
  // slot long before this bound; it only guards against an endless loop.
  for (let candidate = 0; missing > 0; candidate++) {
    if (candidate > 100 * SLOT_COUNT * 20) throw new Error(`redis backend: found no hash tags for ${count} shards`);
    const tag = `${count}:${candidate}`;
    const shard = Math.floor((slotOfTag(tag) * count) / SLOT_COUNT);
    if (tags[shard] === undefined) {
      tags[shard] = tag;
      missing--;
    }
  }
  const done = Object.freeze(tags as string[]);
  tagsByCount.set(count, done);
  return done;
}
