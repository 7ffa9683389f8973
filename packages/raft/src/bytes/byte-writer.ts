import { isWellFormed, type ByteError } from './utf8.js';

const TWO_32 = 0x1_0000_0000;
/** The length a {@link ByteWriter.nullableString32} writes for null. */
export const NULL_STRING32 = 0xffffffff;
// Below this, handing out a pooled copy is cheaper than allocating a fresh buffer.
const SMALL_TAKE_BYTES = 1024;

/**
 * The one byte writer of the package: the WAL, the state and the transport each build their
 * records with it. A growable buffer, reusable through `reset()`, whose bytes can be handed out
 * without a copy (`view()`), as a copy (`finish()`), or by giving up the buffer (`take()`).
 *
 * Integers: fixed-width big- or little-endian, and unsigned LEB128 varints (safe integers only, 1
 * byte below 128, at most 8). Floats: big-endian float64. Strings and byte arrays come in the
 * framings the formats use: a varint length (`bytes`, `string`), a varint header that also flags
 * UTF-16 text (`taggedString`), or a little-endian 32-bit length (`bytes32`, `nullableString32`).
 * Values that cannot be written are reported through `fail`, as the layer's own error.
 */
export class ByteWriter {
  #buffer: Buffer;
  #length = 0;
  readonly #initialCapacity: number;
  readonly #fail: ByteError;

  constructor(initialCapacity = 256, fail: ByteError = (problem) => new RangeError(problem)) {
    this.#initialCapacity = Math.max(16, initialCapacity);
    this.#buffer = Buffer.allocUnsafe(this.#initialCapacity);
    this.#fail = fail;
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#length;
  }

  #ensure(extra: number): void {
    const needed = this.#length + extra;
    if (needed <= this.#buffer.length) return;
    let capacity = this.#buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = Buffer.allocUnsafe(capacity);
    this.#buffer.copy(grown, 0, 0, this.#length);
    this.#buffer = grown;
  }

  /** Forgets what was written, keeping the memory: the next value starts at offset 0. */
  reset(): this {
    this.#length = 0;
    return this;
  }

  /** Forgets everything after `length` (rolls back a frame that must not be sent). */
  truncate(length: number): this {
    this.#length = length;
    return this;
  }

  /** Reserves `count` bytes to be patched in later (a frame length); returns their offset. */
  reserve(count: number): number {
    this.#ensure(count);
    const offset = this.#length;
    this.#length += count;
    return offset;
  }

  /** The bytes written so far without a copy: valid only until the writer is next written or reset. */
  view(): Buffer {
    return this.#buffer.subarray(0, this.#length);
  }

  /** The bytes written so far, as a copy the writer never touches again. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.#length);
    out.set(this.#buffer.subarray(0, this.#length));
    return out;
  }

  /**
   * Hands over the written bytes and starts afresh: the caller (a socket) may hold them for a
   * while, so they are never overwritten.
   */
  take(): Buffer {
    if (this.#length < SMALL_TAKE_BYTES) {
      // A small batch (a heartbeat tick) is copied into Node's pooled memory and the buffer reused.
      const copy = Buffer.from(this.#buffer.subarray(0, this.#length));
      this.#length = 0;
      return copy;
    }
    const written = this.#buffer.subarray(0, this.#length);
    this.#buffer = Buffer.allocUnsafe(Math.max(this.#initialCapacity, Math.min(this.#length, 1 << 20)));
    this.#length = 0;
    return written;
  }

  u8(value: number): this {
    this.#ensure(1);
    this.#buffer[this.#length++] = value;
    return this;
  }

  bool(value: boolean): this {
    return this.u8(value ? 1 : 0);
  }

  u16be(value: number): this {
    this.#ensure(2);
    this.#buffer.writeUInt16BE(value, this.#length);
    this.#length += 2;
    return this;
  }

  u32be(value: number): this {
    this.#ensure(4);
    this.#buffer.writeUInt32BE(value >>> 0, this.#length);
    this.#length += 4;
    return this;
  }

  u32le(value: number): this {
    this.#ensure(4);
    this.#buffer.writeUInt32LE(value >>> 0, this.#length);
    this.#length += 4;
    return this;
  }

  /** An unsigned safe integer as 64 bits little-endian, written as two 32-bit halves (no BigInt). */
  u64le(value: number): this {
    return this.u32le(value % TWO_32).u32le(Math.floor(value / TWO_32));
  }

  /** Overwrites 4 bytes at `offset` (already written) with `value`, big-endian. */
  patchU32be(offset: number, value: number): void {
    this.#buffer.writeUInt32BE(value >>> 0, offset);
  }

  /** Overwrites 4 bytes at `offset` (already written) with `value`, little-endian. */
  patchU32le(offset: number, value: number): void {
    this.#buffer.writeUInt32LE(value >>> 0, offset);
  }

  /** An unsigned safe integer as a LEB128 varint; `field` names it in the error for any other value. */
  varuint(value: number, field = 'integer'): this {
    if (!Number.isSafeInteger(value) || value < 0) throw this.#fail(`${field} must be a safe integer ≥ 0 (got ${String(value)})`);
    this.#ensure(8);
    const buffer = this.#buffer;
    let length = this.#length;
    let rest = value;
    while (rest > 0x7f) {
      // `& 0x7f` keeps the low bits of any safe integer (ToInt32 is exact on them).
      buffer[length++] = (rest & 0x7f) | 0x80;
      rest = rest > 0xffffffff ? Math.floor(rest / 0x80) : rest >>> 7;
    }
    buffer[length++] = rest;
    this.#length = length;
    return this;
  }

  f64be(value: number): this {
    this.#ensure(8);
    this.#buffer.writeDoubleBE(value, this.#length);
    this.#length += 8;
    return this;
  }

  /** Bytes as they are, without a length. */
  raw(bytes: Uint8Array): this {
    this.#ensure(bytes.length);
    this.#buffer.set(bytes, this.#length);
    this.#length += bytes.length;
    return this;
  }

  /** Bytes with a varint length. */
  bytes(bytes: Uint8Array, field = 'bytes'): this {
    if (!(bytes instanceof Uint8Array)) throw this.#fail(`${field} must be a Uint8Array`);
    return this.varuint(bytes.length, field).raw(bytes);
  }

  /** UTF-8 with a varint length (a lone surrogate becomes U+FFFD, as `TextEncoder` writes it). */
  string(text: string): this {
    return this.#utf8(text, 1, 0, 'string length');
  }

  /**
   * A string behind a varint header `2 × byteLength + flag`. Well-formed text is UTF-8 (flag 0);
   * text with lone surrogates is UTF-16LE (flag 1), so every JS string round-trips.
   */
  taggedString(text: string, field: string): this {
    if (typeof text !== 'string') throw this.#fail(`${field} must be a string (got ${typeof text})`);
    return this.#tagged(text, 0);
  }

  /** A tagged string or null: header 0 is null, otherwise the tagged string's header plus one. */
  nullableTaggedString(text: string | null, field: string): this {
    if (text === null) return this.u8(0);
    if (typeof text !== 'string') throw this.#fail(`${field} must be a string or null (got ${typeof text})`);
    return this.#tagged(text, 1);
  }

  #tagged(text: string, bias: number): this {
    if (isWellFormed(text)) return this.#utf8(text, 2, bias, 'string length');
    const byteLength = text.length * 2;
    this.varuint(byteLength * 2 + 1 + bias, 'string length');
    this.#ensure(byteLength);
    this.#length += this.#buffer.write(text, this.#length, byteLength, 'utf16le');
    return this;
  }

  /** UTF-8 behind the varint header `scale × byteLength + bias`. */
  #utf8(text: string, scale: number, bias: number, field: string): this {
    // At most 3 UTF-8 bytes per UTF-16 unit: when even that fits a one-byte header, the text is
    // written in place and the header patched in after, without measuring it first.
    if (text.length * 3 * scale + bias < 0x80) {
      this.#ensure(1 + text.length * 3);
      const header = this.#length;
      const written = this.#buffer.write(text, header + 1, 'utf8');
      this.#buffer[header] = written * scale + bias;
      this.#length = header + 1 + written;
      return this;
    }
    const byteLength = Buffer.byteLength(text, 'utf8');
    this.varuint(byteLength * scale + bias, field);
    this.#ensure(byteLength);
    this.#length += this.#buffer.write(text, this.#length, byteLength, 'utf8');
    return this;
  }

  /** Bytes with a 32-bit little-endian length. */
  bytes32(bytes: Uint8Array): this {
    return this.u32le(bytes.byteLength).raw(bytes);
  }

  /** UTF-8 with a 32-bit little-endian length, or null (the length {@link NULL_STRING32}). */
  nullableString32(text: string | null): this {
    if (text === null) return this.u32le(NULL_STRING32);
    const byteLength = Buffer.byteLength(text, 'utf8');
    this.u32le(byteLength);
    this.#ensure(byteLength);
    this.#length += this.#buffer.write(text, this.#length, byteLength, 'utf8');
    return this;
  }
}
