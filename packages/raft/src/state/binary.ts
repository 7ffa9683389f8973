/**
 * The byte-level primitives of the command codec, the stored values and the snapshot image:
 * unsigned LEB128 integers (safe integers only), big-endian float64, and length-prefixed UTF-8
 * strings. Decoding is total: any byte string either decodes or throws `DecodeError`, never
 * anything else, so an undecodable log entry becomes a deterministic "invalid command".
 *
 * These run for every entry on every node, so they avoid per-call allocations: a writer can be
 * reset and reused (`view()` hands out its bytes without a copy), floats go through one shared
 * scratch array instead of a DataView per object, and short strings are written in place.
 */

/** Bytes that are not a well-formed encoding. */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecodeError';
  }
}

const utf8 = new TextEncoder();
// `fatal` turns malformed UTF-8 into an error instead of U+FFFD; `ignoreBOM` keeps a leading U+FEFF.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// Float64 ↔ big-endian bytes through one shared scratch value.
const float = new Float64Array(1);
const floatBytes = new Uint8Array(float.buffer);
const littleEndian = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

// A string this short always has a one-byte length prefix (at most 3 UTF-8 bytes per UTF-16
// unit: 42 × 3 = 126 < 128), so it is written in place and the prefix patched in after.
const SHORT_STRING_UNITS = 42;

/** Encodes a string as UTF-8 (a lone surrogate becomes U+FFFD). */
export function utf8Bytes(text: string): Uint8Array {
  return utf8.encode(text);
}

/** Decodes UTF-8, throwing `DecodeError` on malformed input. */
export function utf8Text(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new DecodeError('malformed UTF-8 text');
  }
}

/** Appends values to a growing buffer; reusable through `reset()`. */
export class ByteWriter {
  #buffer: Buffer;
  #length = 0;

  constructor(initialSize = 256) {
    this.#buffer = Buffer.allocUnsafe(initialSize);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#length;
  }

  #reserve(bytes: number): void {
    const needed = this.#length + bytes;
    if (needed <= this.#buffer.length) return;
    let size = Math.max(64, this.#buffer.length * 2);
    while (size < needed) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.#buffer.copy(next, 0, 0, this.#length);
    this.#buffer = next;
  }

  /** Forgets what was written, keeping the memory: the next value starts at offset 0. */
  reset(): this {
    this.#length = 0;
    return this;
  }

  u8(value: number): this {
    this.#reserve(1);
    this.#buffer[this.#length++] = value;
    return this;
  }

  /** An unsigned safe integer as LEB128 (1 byte below 128, at most 8). */
  varuint(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`not an unsigned safe integer: ${value}`);
    this.#reserve(8);
    const buffer = this.#buffer;
    let length = this.#length;
    let rest = value;
    while (rest >= 0x80) {
      // `& 0x7f` keeps the low bits of any safe integer (ToInt32 is exact on them).
      buffer[length++] = (rest & 0x7f) | 0x80;
      rest = rest > 0xffffffff ? Math.floor(rest / 0x80) : rest >>> 7;
    }
    buffer[length++] = rest;
    this.#length = length;
    return this;
  }

  f64(value: number): this {
    this.#reserve(8);
    float[0] = value;
    const buffer = this.#buffer;
    const at = this.#length;
    if (littleEndian) for (let i = 0; i < 8; i++) buffer[at + i] = floatBytes[7 - i] as number;
    else buffer.set(floatBytes, at);
    this.#length = at + 8;
    return this;
  }

  /** Bytes as they are, without a length. */
  raw(bytes: Uint8Array): this {
    this.#reserve(bytes.length);
    this.#buffer.set(bytes, this.#length);
    this.#length += bytes.length;
    return this;
  }

  /** Length-prefixed bytes. */
  bytes(bytes: Uint8Array): this {
    return this.varuint(bytes.length).raw(bytes);
  }

  /** Length-prefixed UTF-8 (a lone surrogate becomes U+FFFD, as `TextEncoder` writes it). */
  string(text: string): this {
    if (text.length <= SHORT_STRING_UNITS) {
      this.#reserve(1 + text.length * 3);
      const prefix = this.#length;
      const written = this.#buffer.write(text, prefix + 1, 'utf8');
      this.#buffer[prefix] = written;
      this.#length = prefix + 1 + written;
      return this;
    }
    const byteLength = Buffer.byteLength(text, 'utf8');
    this.varuint(byteLength);
    this.#reserve(byteLength);
    this.#length += this.#buffer.write(text, this.#length, byteLength, 'utf8');
    return this;
  }

  /** The bytes written so far, as a copy the writer never touches again. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.#length);
    out.set(this.#buffer.subarray(0, this.#length));
    return out;
  }

  /** The bytes written so far without a copy: valid only until the writer is next written or reset. */
  view(): Buffer {
    return this.#buffer.subarray(0, this.#length);
  }
}

/** Reads what `ByteWriter` wrote; every read checks bounds and throws `DecodeError`. */
export class ByteReader {
  readonly #bytes: Buffer;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get done(): boolean {
    return this.#offset === this.#bytes.length;
  }

  /** Throws unless every byte was read: trailing garbage is malformed too. */
  end(): void {
    if (!this.done) throw new DecodeError(`${this.#bytes.length - this.#offset} unexpected trailing bytes`);
  }

  #need(count: number): void {
    if (this.#offset + count > this.#bytes.length) throw new DecodeError('unexpected end of data');
  }

  u8(): number {
    this.#need(1);
    return this.#bytes[this.#offset++] as number;
  }

  varuint(): number {
    const first = this.u8();
    if (first < 0x80) return first;
    let value = first & 0x7f;
    let scale = 0x80;
    for (let i = 1; i < 8; i++) {
      const byte = this.u8();
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) {
        if (!Number.isSafeInteger(value)) throw new DecodeError('integer beyond the safe range');
        if (byte === 0) throw new DecodeError('non-canonical integer');
        return value;
      }
      scale *= 0x80;
    }
    throw new DecodeError('integer longer than 8 bytes');
  }

  f64(): number {
    this.#need(8);
    const bytes = this.#bytes;
    const at = this.#offset;
    if (littleEndian) for (let i = 0; i < 8; i++) floatBytes[7 - i] = bytes[at + i] as number;
    else floatBytes.set(bytes.subarray(at, at + 8));
    this.#offset = at + 8;
    return float[0] as number;
  }

  raw(count: number): Uint8Array {
    this.#need(count);
    const out = this.#bytes.subarray(this.#offset, this.#offset + count);
    this.#offset += count;
    return out;
  }

  bytes(): Uint8Array {
    return this.raw(this.varuint());
  }

  string(): string {
    const length = this.varuint();
    this.#need(length);
    const bytes = this.#bytes;
    const start = this.#offset;
    const end = start + length;
    this.#offset = end;
    // Most strings are ASCII (types, IDs, JSON): those decode without a validating decoder.
    for (let i = start; i < end; i++) if ((bytes[i] as number) >= 0x80) return utf8Text(bytes.subarray(start, end));
    return bytes.toString('latin1', start, end);
  }

  /** A count of following items, checked against the bytes left so a bad count cannot allocate wildly. */
  count(minItemBytes: number): number {
    const count = this.varuint();
    if (count * minItemBytes > this.#bytes.length - this.#offset) throw new DecodeError(`count ${count} exceeds the data`);
    return count;
  }
}
