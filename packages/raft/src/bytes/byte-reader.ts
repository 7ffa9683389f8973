import { NULL_STRING32 } from './byte-writer.js';
import { utf8Text, type ByteError } from './utf8.js';

const TWO_32 = 0x1_0000_0000;

/**
 * Reads what {@link ByteWriter} wrote, checking every bound: any input either reads or throws the
 * error `fail` makes (each layer passes its own: the WAL's, the state's, the transport's), never
 * anything else. `what` names the value being read in that error.
 */
export class ByteReader {
  readonly #bytes: Buffer;
  readonly #end: number;
  readonly #fail: ByteError;
  #offset: number;

  /** Reads `bytes` from `start` up to `end`. */
  constructor(bytes: Uint8Array, fail: ByteError, start = 0, end = bytes.length) {
    this.#bytes = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#fail = fail;
    this.#offset = start;
    this.#end = end;
  }

  get offset(): number {
    return this.#offset;
  }

  get remaining(): number {
    return this.#end - this.#offset;
  }

  get done(): boolean {
    return this.#offset === this.#end;
  }

  /** Throws unless every byte was read: trailing garbage is malformed too. */
  end(): void {
    if (!this.done) throw this.#fail(`${this.remaining} unexpected trailing bytes`);
  }

  #need(count: number, what: string): void {
    if (this.#offset + count > this.#end) {
      throw this.#fail(`truncated input: ${what} needs ${count} bytes at offset ${this.#offset}, only ${this.remaining} left`);
    }
  }

  u8(what = 'a byte'): number {
    this.#need(1, what);
    return this.#bytes[this.#offset++] as number;
  }

  /** A byte that must be 0 (false) or 1 (true). */
  bool(what = 'a flag'): boolean {
    const value = this.u8(what);
    if (value > 1) throw this.#fail(`${what} must be 0 or 1 (got ${value})`);
    return value === 1;
  }

  u16be(what = 'a 16-bit integer'): number {
    this.#need(2, what);
    const value = this.#bytes.readUInt16BE(this.#offset);
    this.#offset += 2;
    return value;
  }

  u32be(what = 'a 32-bit integer'): number {
    this.#need(4, what);
    const value = this.#bytes.readUInt32BE(this.#offset);
    this.#offset += 4;
    return value;
  }

  u32le(what = 'a 32-bit integer'): number {
    this.#need(4, what);
    const value = this.#bytes.readUInt32LE(this.#offset);
    this.#offset += 4;
    return value;
  }

  /** What {@link ByteWriter.u64le} wrote; a value beyond the safe integers is malformed. */
  u64le(what = 'a 64-bit integer'): number {
    const low = this.u32le(what);
    const high = this.u32le(what);
    const value = high * TWO_32 + low;
    if (!Number.isSafeInteger(value)) throw this.#fail(`${what} ${value} is not a safe integer`);
    return value;
  }

  /** A LEB128 varint: a safe integer in at most 8 bytes, in its shortest form. */
  varuint(what = 'an integer'): number {
    const first = this.u8(what);
    if (first < 0x80) return first;
    let value = first & 0x7f;
    let scale = 0x80;
    for (let i = 1; i < 8; i++) {
      const byte = this.u8(what);
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (!Number.isSafeInteger(value)) throw this.#fail(`${what} is not a safe integer`);
        // A last byte of 0 adds nothing: a longer form of a shorter varint, never written.
        if (byte === 0) throw this.#fail(`${what} is a non-canonical varint`);
        return value;
      }
      scale *= 0x80;
    }
    throw this.#fail(`${what} is a varint longer than 8 bytes`);
  }

  f64be(what = 'a float'): number {
    this.#need(8, what);
    const value = this.#bytes.readDoubleBE(this.#offset);
    this.#offset += 8;
    return value;
  }

  /** The next `count` bytes, as a view into the input. */
  raw(count: number, what = 'bytes'): Buffer {
    this.#need(count, what);
    const view = this.#bytes.subarray(this.#offset, this.#offset + count);
    this.#offset += count;
    return view;
  }

  /** Everything left, as a view. */
  rest(): Buffer {
    return this.raw(this.remaining);
  }

  /** Bytes with a varint length, as a view into the input (the caller decides about copying). */
  bytes(what = 'bytes'): Uint8Array {
    const view = this.raw(this.varuint(what), what);
    return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  }

  /** UTF-8 with a varint length; malformed UTF-8 is an error. */
  string(what = 'a string'): string {
    const length = this.varuint(what);
    this.#need(length, what);
    const bytes = this.#bytes;
    const start = this.#offset;
    const end = start + length;
    this.#offset = end;
    // Most strings are ASCII (types, IDs, JSON): those decode without a validating decoder.
    for (let i = start; i < end; i++) if ((bytes[i] as number) >= 0x80) return utf8Text(bytes.subarray(start, end), this.#fail);
    return bytes.toString('latin1', start, end);
  }

  /** What {@link ByteWriter.taggedString} wrote. */
  taggedString(what: string): string {
    return this.#tagged(this.varuint(what), what);
  }

  /** What {@link ByteWriter.nullableTaggedString} wrote. */
  nullableTaggedString(what: string): string | null {
    const header = this.varuint(what);
    return header === 0 ? null : this.#tagged(header - 1, what);
  }

  #tagged(header: number, what: string): string {
    const byteLength = Math.floor(header / 2);
    const utf16 = header % 2 === 1;
    if (utf16 && byteLength % 2 === 1) throw this.#fail(`${what} is UTF-16 text of an odd byte length`);
    this.#need(byteLength, what);
    const start = this.#offset;
    this.#offset += byteLength;
    return this.#bytes.toString(utf16 ? 'utf16le' : 'utf8', start, this.#offset);
  }

  /** Bytes with a 32-bit little-endian length, copied so they do not pin the input. */
  bytes32(what = 'bytes'): Uint8Array {
    const view = this.raw(this.u32le(what), what);
    const copy = new Uint8Array(view.length);
    copy.set(view);
    return copy;
  }

  /** What {@link ByteWriter.nullableString32} wrote. */
  nullableString32(what = 'a string'): string | null {
    const length = this.u32le(what);
    if (length === NULL_STRING32) return null;
    this.#need(length, what);
    const start = this.#offset;
    this.#offset += length;
    return this.#bytes.toString('utf8', start, this.#offset);
  }

  /** A count of following items, checked against the bytes left so a bad count cannot allocate wildly. */
  count(minItemBytes: number, what = 'a count'): number {
    const count = this.varuint(what);
    if (count * minItemBytes > this.remaining) throw this.#fail(`${what} ${count} exceeds the data`);
    return count;
  }
}
