/**
 * The LMDB keys of the materialized state. Everything lives in one LMDB database, so one write
 * transaction covers it and a snapshot image is one ordered scan; the first byte of a key names its
 * table. Keys compare as raw bytes (memcmp), so each part is encoded to sort correctly:
 *
 * - integers (aggregate numbers, sequences, record IDs, log indexes): 8 bytes big-endian;
 * - times (epoch ms, possibly negative): float64 with the sign bit flipped for positive values and
 *   every bit flipped for negative ones, so byte order is numeric order;
 * - strings inside a tuple: UTF-8 with each 0x00 written as 0x00 0xFF and a 0x00 0x01 terminator,
 *   so a string sorts before any longer string it prefixes, whatever follows it in the key;
 * - a string that ends the key (the encoded aggregate ID, a proposal ID): plain UTF-8.
 */
import { utf8Bytes, utf8Text } from '../bytes/utf8.js';
import { decodeError, DecodeError } from './errors.js';

/**
 * The layout of keys and values this code reads and writes, kept in the meta table. Version 2
 * stores the applied proposals in buckets; version 3 gives every event a log position (in its
 * value, in the log table and in results and archive records), and adds the aggregate-ID, lives
 * and projection tables. A folder or an image of another version is refused rather than misread.
 */
export const LAYOUT_VERSION = 3;

/** Table tags: the first byte of every key. */
export const Table = {
  /** [0x01, field] → u64 */
  meta: 0x01,
  /** [0x02, encodeAggregateId(id) as UTF-8] → aggregate head */
  aggregate: 0x02,
  /** [0x03, aggregate number, sequence] → event */
  event: 0x03,
  /** [0x04, aggregate number] → snapshot */
  snapshot: 0x04,
  /** [0x05, status, entry time, aggregate number] → encoded aggregate ID (UTF-8) */
  status: 0x05,
  /** [0x06, label, value, aggregate number] → encoded aggregate ID (UTF-8) */
  label: 0x06,
  /** [0x07, record ID] → archive record (aggregate, snapshot, events) */
  archive: 0x07,
  /** [0x08, record ID] → archive lease (expiry, lease number, holder) */
  lease: 0x08,
  /** [0x09, bucket number (proposal ordinal ÷ 64)] → the proposals recorded in the bucket (see proposal-table.ts) */
  proposal: 0x09,
  /** [0x0a, position] → (aggregate number, sequence) of the live event at that log position */
  log: 0x0a,
  /** [0x0b, aggregate number] → encoded aggregate ID (UTF-8), so a log entry finds its aggregate's ID */
  aggregateId: 0x0b,
  /** [0x0c, encodeAggregateId(id) as UTF-8] → where the ID's next life starts (its last life was archived) */
  life: 0x0c,
  /** [0x0d, projection name as UTF-8] → projection record */
  projection: 0x0d,
} as const;

/** Fields of the meta table. */
export const Meta = {
  appliedIndex: 1,
  nextAggregate: 2,
  nextArchiveRecord: 3,
  layoutVersion: 4,
  nextProposalOrdinal: 5,
  /** The position the next appended event takes (1 on a fresh state). */
  nextPosition: 6,
  /** The log's identity (UTF-8 text, not a number), set once by the first `open-log` command. */
  logId: 7,
} as const;

/** LMDB's key size limit as lmdb-js builds it; a key beyond it cannot be stored. */
export const MAX_KEY_BYTES = 1978;

/** Builds one key from parts. */
export class KeyBuilder {
  readonly #parts: number[] = [];

  constructor(table: number) {
    this.#parts.push(table);
  }

  u64(value: number): this {
    const high = Math.floor(value / 0x1_0000_0000);
    const low = value >>> 0;
    this.#parts.push(
      high >>> 24,
      (high >>> 16) & 0xff,
      (high >>> 8) & 0xff,
      high & 0xff,
      low >>> 24,
      (low >>> 16) & 0xff,
      (low >>> 8) & 0xff,
      low & 0xff,
    );
    return this;
  }

  time(value: number): this {
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setFloat64(0, value);
    if (((bytes[0] as number) & 0x80) === 0) bytes[0] = (bytes[0] as number) | 0x80;
    else for (let i = 0; i < 8; i++) bytes[i] = ~(bytes[i] as number) & 0xff;
    for (const byte of bytes) this.#parts.push(byte);
    return this;
  }

  /** A string inside a tuple (escaped and terminated). */
  str(value: string): this {
    for (const byte of utf8Bytes(value)) {
      this.#parts.push(byte);
      if (byte === 0) this.#parts.push(0xff);
    }
    this.#parts.push(0, 1);
    return this;
  }

  /** A string that ends the key, as plain UTF-8. */
  tail(value: string): this {
    for (const byte of utf8Bytes(value)) this.#parts.push(byte);
    return this;
  }

  get length(): number {
    return this.#parts.length;
  }

  build(): Buffer {
    return Buffer.from(this.#parts);
  }
}

/**
 * The exclusive upper bound of every key that starts with `prefix`, for a prefix that ends with a
 * table tag or a terminated tuple string (0x00 0x01): no key holds 0x00 0x02 there.
 */
export function prefixEnd(prefix: Uint8Array): Buffer {
  const end = Buffer.from(prefix);
  end[end.length - 1] = (end[end.length - 1] as number) + 1;
  return end;
}

/** The exclusive upper bound of every key whose UTF-8 tail starts with `prefix` (UTF-8 never holds 0xff). */
export function tailPrefixEnd(prefix: Uint8Array): Buffer {
  const end = Buffer.alloc(prefix.length + 1);
  end.set(prefix);
  end[prefix.length] = 0xff;
  return end;
}

/** Reads parts back out of a key. */
export class KeyReader {
  #offset: number;

  constructor(
    readonly key: Uint8Array,
    offset = 1,
  ) {
    this.#offset = offset;
  }

  u64(): number {
    const view = new DataView(this.key.buffer, this.key.byteOffset + this.#offset, 8);
    this.#offset += 8;
    return view.getUint32(0) * 0x1_0000_0000 + view.getUint32(4);
  }

  time(): number {
    const bytes = Uint8Array.from(this.key.subarray(this.#offset, this.#offset + 8));
    this.#offset += 8;
    if (((bytes[0] as number) & 0x80) !== 0) bytes[0] = (bytes[0] as number) & 0x7f;
    else for (let i = 0; i < 8; i++) bytes[i] = ~(bytes[i] as number) & 0xff;
    return new DataView(bytes.buffer, bytes.byteOffset, 8).getFloat64(0);
  }

  skip(bytes: number): this {
    this.#offset += bytes;
    return this;
  }

  str(): string {
    const out: number[] = [];
    for (;;) {
      const byte = this.key[this.#offset++];
      if (byte === undefined) throw new DecodeError('unterminated string in key');
      if (byte !== 0) {
        out.push(byte);
        continue;
      }
      const next = this.key[this.#offset++];
      if (next === 1) return utf8Text(Uint8Array.from(out), decodeError);
      if (next !== 0xff) throw new DecodeError('bad escape in key');
      out.push(0);
    }
  }

  tail(): string {
    return utf8Text(this.key.subarray(this.#offset), decodeError);
  }
}

export function metaKey(field: number): Buffer {
  return Buffer.from([Table.meta, field]);
}

// The keys below are built on every applied write; they fill one Buffer directly rather than go
// through KeyBuilder's byte array, and give the same bytes.

/** Writes `value` (a safe integer ≥ 0) as 8 bytes big-endian at `offset`. */
function writeU64(key: Buffer, offset: number, value: number): void {
  key.writeUInt32BE(Math.floor(value / 0x1_0000_0000) >>> 0, offset);
  key.writeUInt32BE(value >>> 0, offset + 4);
}

/** `head` followed by `value` as plain UTF-8 (a lone surrogate becomes U+FFFD, as TextEncoder does). */
function withTail(head: Buffer, value: string): Buffer {
  const key = Buffer.allocUnsafe(head.length + Buffer.byteLength(value, 'utf8'));
  head.copy(key, 0);
  key.write(value, head.length, 'utf8');
  return key;
}

const AGGREGATE_HEAD = Buffer.from([Table.aggregate]);

export function aggregateKey(encodedId: string): Buffer {
  return withTail(AGGREGATE_HEAD, encodedId);
}

export function eventKey(aggregate: number, sequence: number): Buffer {
  const key = Buffer.allocUnsafe(17);
  key[0] = Table.event;
  writeU64(key, 1, aggregate);
  writeU64(key, 9, sequence);
  return key;
}

/** The exclusive upper bound of aggregate `aggregate`'s event keys (every sequence sorts below it). */
export function eventsEnd(aggregate: number): Buffer {
  return eventKey(aggregate + 1, 0);
}

export function logKey(position: number): Buffer {
  const key = Buffer.allocUnsafe(9);
  key[0] = Table.log;
  writeU64(key, 1, position);
  return key;
}

export function aggregateIdKey(aggregate: number): Buffer {
  const key = Buffer.allocUnsafe(9);
  key[0] = Table.aggregateId;
  writeU64(key, 1, aggregate);
  return key;
}

const LIFE_HEAD = Buffer.from([Table.life]);

export function lifeKey(encodedId: string): Buffer {
  return withTail(LIFE_HEAD, encodedId);
}

const PROJECTION_HEAD = Buffer.from([Table.projection]);

export function projectionKey(name: string): Buffer {
  return withTail(PROJECTION_HEAD, name);
}

export function snapshotKey(aggregate: number): Buffer {
  return new KeyBuilder(Table.snapshot).u64(aggregate).build();
}

export function statusKey(status: string, time: number, aggregate: number): Buffer {
  return new KeyBuilder(Table.status).str(status).time(time).u64(aggregate).build();
}

export function labelKey(label: string, value: string, aggregate: number): Buffer {
  return new KeyBuilder(Table.label).str(label).str(value).u64(aggregate).build();
}

export function archiveKey(record: number): Buffer {
  return new KeyBuilder(Table.archive).u64(record).build();
}

export function leaseKey(record: number): Buffer {
  return new KeyBuilder(Table.lease).u64(record).build();
}

export function proposalBucketKey(bucket: number): Buffer {
  const key = Buffer.allocUnsafe(9);
  key[0] = Table.proposal;
  writeU64(key, 1, bucket);
  return key;
}
