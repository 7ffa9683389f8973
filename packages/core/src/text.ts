// A UTF-16 surrogate without its partner is not a Unicode character. Backends that store text as
// UTF-8 (Redis, PostgreSQL) replace it with U+FFFD, so two different strings would become one:
// IDs would collide and labels would read back changed. Such strings are refused up front.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when `text` holds a lone (unpaired) UTF-16 surrogate, i.e. is not well-formed Unicode. */
export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}

/** The explanation every validation error gives for a lone surrogate. */
export const LONE_SURROGATE_PROBLEM = 'holds a lone UTF-16 surrogate, which is not Unicode text and cannot be stored faithfully';

/**
 * Orders two strings by UTF-16 code units, the order every backend and `readAll` filter uses for
 * IDs, label values and prefixes. Unlike `localeCompare` it never depends on the locale or on
 * Unicode normalization, so every process and every server agrees on it.
 */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
