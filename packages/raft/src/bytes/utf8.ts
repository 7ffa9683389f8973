const encoder = new TextEncoder();
// `fatal` turns malformed UTF-8 into an error instead of U+FFFD; `ignoreBOM` keeps a leading U+FEFF.
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Makes the error a layer reports for bytes it cannot read (each layer has its own type). */
export type ByteError = (problem: string) => Error;

/** `String.prototype.isWellFormed` (Node 20+); typed here because the project's lib is ES2023. */
export function isWellFormed(text: string): boolean {
  return (text as unknown as { isWellFormed(): boolean }).isWellFormed();
}

/** Encodes a string as UTF-8 (a lone surrogate becomes U+FFFD). */
export function utf8Bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Decodes UTF-8, reporting malformed input through `fail`. */
export function utf8Text(bytes: Uint8Array, fail: ByteError): string {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    throw fail('malformed UTF-8 text');
  }
}
