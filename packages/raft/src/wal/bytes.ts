/**
 * Little-endian binary writing and reading for WAL records and snapshot files. Integers that can
 * exceed 32 bits (terms, indexes) are stored as unsigned 64-bit values split into two halves, so
 * no BigInt is involved; they stay within Number.MAX_SAFE_INTEGER.
 */

const TWO_32 = 0x1_0000_0000;
const NULL_STRING = 0xffffffff;

/** A growable buffer for building one record or file. */
export class ByteWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(capacity = 256) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  get length(): number {
    return this.pos;
  }

  u8(value: number): this {
    this.ensure(1);
    this.buf.writeUInt8(value, this.pos);
    this.pos += 1;
    return this;
  }

  u32(value: number): this {
    this.ensure(4);
    this.buf.writeUInt32LE(value >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  u64(value: number): this {
    this.u32(value % TWO_32);
    return this.u32(Math.floor(value / TWO_32));
  }

  /** Bytes as they are, without a length. */
  raw(data: Uint8Array): this {
    this.ensure(data.byteLength);
    this.buf.set(data, this.pos);
    this.pos += data.byteLength;
    return this;
  }

  bytes(data: Uint8Array): this {
    this.u32(data.byteLength);
    this.ensure(data.byteLength);
    this.buf.set(data, this.pos);
    this.pos += data.byteLength;
    return this;
  }

  /** A UTF-8 string, or null (stored as a length of 0xffffffff). */
  string(value: string | null): this {
    if (value === null) return this.u32(NULL_STRING);
    const length = Buffer.byteLength(value, 'utf8');
    this.u32(length);
    this.ensure(length);
    this.pos += this.buf.write(value, this.pos, length, 'utf8');
    return this;
  }

  /** Overwrites 4 bytes at `offset` (already written) with `value`, little-endian. */
  patchU32(offset: number, value: number): void {
    this.buf.writeUInt32LE(value >>> 0, offset);
  }

  /** Forgets what was written, keeping the memory. */
  reset(): this {
    this.pos = 0;
    return this;
  }

  /** The bytes written so far (a view, valid until the next write). */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + extra));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
}

/** A record whose bytes passed their checksum but do not decode: a format or writer bug. */
export class MalformedRecordError extends Error {}

/** Reads what {@link ByteWriter} wrote, checking every bound. */
export class ByteReader {
  private pos = 0;

  constructor(private readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  u8(): number {
    this.need(1);
    const value = this.buf.readUInt8(this.pos);
    this.pos += 1;
    return value;
  }

  u32(): number {
    this.need(4);
    const value = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return value;
  }

  u64(): number {
    const low = this.u32();
    const high = this.u32();
    const value = high * TWO_32 + low;
    if (!Number.isSafeInteger(value)) throw new MalformedRecordError(`integer ${value} is not safe`);
    return value;
  }

  /** A copy of the next length-prefixed bytes, so it does not pin the buffer it came from. */
  bytes(): Uint8Array {
    const length = this.u32();
    this.need(length);
    const out = new Uint8Array(length);
    out.set(this.buf.subarray(this.pos, this.pos + length));
    this.pos += length;
    return out;
  }

  string(): string | null {
    const length = this.u32();
    if (length === NULL_STRING) return null;
    this.need(length);
    const value = this.buf.toString('utf8', this.pos, this.pos + length);
    this.pos += length;
    return value;
  }

  /** Throws unless everything was read. */
  end(): void {
    if (this.pos !== this.buf.length) throw new MalformedRecordError(`${this.buf.length - this.pos} trailing bytes`);
  }

  private need(count: number): void {
    if (this.pos + count > this.buf.length) {
      throw new MalformedRecordError(`needs ${count} bytes at ${this.pos}, record has ${this.buf.length}`);
    }
  }
}
