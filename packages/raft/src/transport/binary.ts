import { CodecError } from './errors.js';

/** `String.prototype.isWellFormed` (Node 20+); typed here because the project's lib is ES2023. */
function isWellFormed(text: string): boolean {
  return (text as unknown as { isWellFormed(): boolean }).isWellFormed();
}

// Strings this short always fit a one-byte length header (3 UTF-8 bytes per UTF-16 unit at most,
// doubled by the encoding flag, below 128), so the length can be patched in after writing.
const SHORT_STRING_UNITS = 21;

// Below this, handing out a pooled copy is cheaper than allocating a fresh buffer.
const SMALL_TAKE_BYTES = 1024;

/**
 * An append-only byte buffer that grows by doubling. Numbers are unsigned LEB128 varints (safe
 * integers only), strings carry a length header, byte arrays are copied raw.
 */
export class ByteWriter {
  private buffer: Buffer;
  private position = 0;

  constructor(private readonly initialCapacity = 4096) {
    this.buffer = Buffer.allocUnsafe(initialCapacity);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.position;
  }

  /** Forgets everything after `length` (used to roll back a frame that must not be sent). */
  truncate(length: number): void {
    this.position = length;
  }

  /**
   * Hands over the written bytes and starts a fresh buffer: the caller (a socket) may hold the
   * returned bytes for a while, so they are never overwritten.
   */
  take(): Buffer {
    if (this.position < SMALL_TAKE_BYTES) {
      // A small batch (a heartbeat tick) is copied into Node's pooled memory and the buffer reused.
      const copy = Buffer.from(this.buffer.subarray(0, this.position));
      this.position = 0;
      return copy;
    }
    const written = this.buffer.subarray(0, this.position);
    this.buffer = Buffer.allocUnsafe(Math.max(this.initialCapacity, Math.min(this.position, 1 << 20)));
    this.position = 0;
    return written;
  }

  /** A copy-free view of the written bytes, valid until the next write. */
  view(): Buffer {
    return this.buffer.subarray(0, this.position);
  }

  private ensure(extra: number): void {
    const needed = this.position + extra;
    if (needed <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = Buffer.allocUnsafe(capacity);
    this.buffer.copy(grown, 0, 0, this.position);
    this.buffer = grown;
  }

  /** Reserves `count` bytes to be filled in later (a frame length); returns their offset. */
  reserve(count: number): number {
    this.ensure(count);
    const offset = this.position;
    this.position += count;
    return offset;
  }

  u8(value: number): void {
    this.ensure(1);
    this.buffer[this.position++] = value;
  }

  u16(value: number): void {
    this.ensure(2);
    this.buffer.writeUInt16BE(value, this.position);
    this.position += 2;
  }

  u32(value: number): void {
    this.ensure(4);
    this.buffer.writeUInt32BE(value, this.position);
    this.position += 4;
  }

  patchU32(offset: number, value: number): void {
    this.buffer.writeUInt32BE(value, offset);
  }

  /** An unsigned varint; `field` names the value in the error when it is not a safe integer ≥ 0. */
  uint(value: number, field: string): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new CodecError(`${field} must be a safe integer ≥ 0 (got ${String(value)})`);
    this.ensure(8);
    const buffer = this.buffer;
    let position = this.position;
    let rest = value;
    while (rest > 0x7f) {
      // `& 0x7f` is exact above 2^32 too: ToInt32 keeps the low bits of an integer.
      buffer[position++] = (rest & 0x7f) | 0x80;
      rest = rest > 0xffffffff ? Math.floor(rest / 128) : rest >>> 7;
    }
    buffer[position++] = rest;
    this.position = position;
  }

  bool(value: boolean): void {
    this.u8(value ? 1 : 0);
  }

  /**
   * A string: a varint header `2 × byteLength + flag`, then the bytes. Well-formed text is UTF-8
   * (flag 0); text with lone surrogates is UTF-16LE (flag 1), so every JS string round-trips.
   */
  string(value: string, field: string): void {
    if (typeof value !== 'string') throw new CodecError(`${field} must be a string (got ${typeof value})`);
    this.stringHeaderAndBytes(value, 0);
  }

  /** A string or null: header 0 is null, otherwise the string header plus one. */
  nullableString(value: string | null, field: string): void {
    if (value === null) {
      this.u8(0);
      return;
    }
    if (typeof value !== 'string') throw new CodecError(`${field} must be a string or null (got ${typeof value})`);
    this.stringHeaderAndBytes(value, 1);
  }

  private stringHeaderAndBytes(value: string, bias: number): void {
    if (!isWellFormed(value)) {
      const byteLength = value.length * 2;
      this.uint(byteLength * 2 + 1 + bias, 'string length');
      this.ensure(byteLength);
      this.position += this.buffer.write(value, this.position, byteLength, 'utf16le');
      return;
    }
    if (value.length <= SHORT_STRING_UNITS) {
      this.ensure(1 + value.length * 3);
      const header = this.position++;
      const written = this.buffer.write(value, this.position, 'utf8');
      this.buffer[header] = written * 2 + bias;
      this.position += written;
      return;
    }
    const byteLength = Buffer.byteLength(value, 'utf8');
    this.uint(byteLength * 2 + bias, 'string length');
    this.ensure(byteLength);
    this.position += this.buffer.write(value, this.position, byteLength, 'utf8');
  }

  /** Raw bytes with a varint length. */
  bytes(value: Uint8Array, field: string): void {
    if (!(value instanceof Uint8Array)) throw new CodecError(`${field} must be a Uint8Array`);
    this.uint(value.length, field);
    this.raw(value);
  }

  /** Raw bytes, no length. */
  raw(value: Uint8Array): void {
    this.ensure(value.length);
    this.buffer.set(value, this.position);
    this.position += value.length;
  }
}

/** Reads what {@link ByteWriter} wrote, checking bounds: a short or malformed input throws `CodecError`. */
export class ByteReader {
  private position: number;

  constructor(
    private readonly buffer: Buffer,
    start = 0,
    private readonly end = buffer.length,
  ) {
    this.position = start;
  }

  get offset(): number {
    return this.position;
  }

  get remaining(): number {
    return this.end - this.position;
  }

  private need(count: number, what: string): void {
    if (this.position + count > this.end) {
      throw new CodecError(
        `truncated input: ${what} needs ${count} bytes at offset ${this.position}, only ${this.end - this.position} left`,
      );
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buffer[this.position++] as number;
  }

  u16(what: string): number {
    this.need(2, what);
    const value = this.buffer.readUInt16BE(this.position);
    this.position += 2;
    return value;
  }

  u32(what: string): number {
    this.need(4, what);
    const value = this.buffer.readUInt32BE(this.position);
    this.position += 4;
    return value;
  }

  uint(what: string): number {
    this.need(1, what);
    const first = this.buffer[this.position++] as number;
    if (first < 0x80) return first;
    let value = first & 0x7f;
    let scale = 128;
    for (let index = 1; index < 8; index++) {
      this.need(1, what);
      const byte = this.buffer[this.position++] as number;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (!Number.isSafeInteger(value)) throw new CodecError(`${what} is not a safe integer`);
        return value;
      }
      scale *= 128;
    }
    throw new CodecError(`${what} is a varint longer than 8 bytes`);
  }

  bool(what: string): boolean {
    const value = this.u8(what);
    if (value > 1) throw new CodecError(`${what} must be 0 or 1 (got ${value})`);
    return value === 1;
  }

  string(what: string): string {
    return this.stringFromHeader(this.uint(what), what);
  }

  nullableString(what: string): string | null {
    const header = this.uint(what);
    return header === 0 ? null : this.stringFromHeader(header - 1, what);
  }

  private stringFromHeader(header: number, what: string): string {
    const byteLength = Math.floor(header / 2);
    const utf16 = header % 2 === 1;
    if (utf16 && byteLength % 2 === 1) throw new CodecError(`${what} is UTF-16 text of an odd byte length`);
    this.need(byteLength, what);
    const start = this.position;
    this.position += byteLength;
    return this.buffer.toString(utf16 ? 'utf16le' : 'utf8', start, this.position);
  }

  /** A length-prefixed byte array, as a view into the input (the caller decides about copying). */
  bytes(what: string): Uint8Array {
    const length = this.uint(what);
    this.need(length, what);
    const view = new Uint8Array(this.buffer.buffer, this.buffer.byteOffset + this.position, length);
    this.position += length;
    return view;
  }

  /** Everything left, as a view. */
  rest(): Buffer {
    const view = this.buffer.subarray(this.position, this.end);
    this.position = this.end;
    return view;
  }
}
