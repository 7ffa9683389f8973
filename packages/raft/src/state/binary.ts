/**
 * The byte-level primitives of the command codec, the stored values and the snapshot image:
 * unsigned LEB128 integers (safe integers only), big-endian float64, and length-prefixed UTF-8
 * strings. Decoding is total: any byte string either decodes or throws `DecodeError`, never
 * anything else, so an undecodable log entry becomes a deterministic "invalid command".
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

/** Encodes a string as UTF-8. */
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

/** Appends values to a growing buffer. */
export class ByteWriter {
  #buffer: Uint8Array;
  #view: DataView;
  #length = 0;

  constructor(initialSize = 256) {
    this.#buffer = new Uint8Array(initialSize);
    this.#view = new DataView(this.#buffer.buffer);
  }

  #reserve(bytes: number): void {
    const needed = this.#length + bytes;
    if (needed <= this.#buffer.length) return;
    let size = this.#buffer.length * 2;
    while (size < needed) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = next;
    this.#view = new DataView(next.buffer);
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
    let rest = value;
    while (rest >= 0x80) {
      this.#buffer[this.#length++] = (rest % 0x80) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    this.#buffer[this.#length++] = rest;
    return this;
  }

  f64(value: number): this {
    this.#reserve(8);
    this.#view.setFloat64(this.#length, value);
    this.#length += 8;
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

  /** Length-prefixed UTF-8. */
  string(text: string): this {
    return this.bytes(utf8.encode(text));
  }

  /** The bytes written so far (a copy, so the writer may be reused). */
  finish(): Uint8Array {
    return this.#buffer.slice(0, this.#length);
  }
}

/** Reads what `ByteWriter` wrote; every read checks bounds and throws `DecodeError`. */
export class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
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
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const byte = this.u8();
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) {
        if (!Number.isSafeInteger(value)) throw new DecodeError('integer beyond the safe range');
        if (i > 0 && byte === 0) throw new DecodeError('non-canonical integer');
        return value;
      }
      scale *= 0x80;
    }
    throw new DecodeError('integer longer than 8 bytes');
  }

  f64(): number {
    this.#need(8);
    const value = this.#view.getFloat64(this.#offset);
    this.#offset += 8;
    return value;
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
    return utf8Text(this.bytes());
  }

  /** A count of following items, checked against the bytes left so a bad count cannot allocate wildly. */
  count(minItemBytes: number): number {
    const count = this.varuint();
    if (count * minItemBytes > this.#bytes.length - this.#offset) throw new DecodeError(`count ${count} exceeds the data`);
    return count;
  }
}
