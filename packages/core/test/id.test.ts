import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidAggregateIdError } from '../src/errors.js';
import {
  assertAggregateId,
  assertIdPrefix,
  decodeAggregateId,
  encodeAggregateId,
  encodeIdPart,
  hasIdPrefix,
  sameAggregateId,
} from '../src/id.js';

/** Parts drawn from the characters that matter for escaping, mixed with arbitrary Unicode. */
const tricky = fc.constantFrom(':', '%', '{', '}', '\\', '\x1f', '%3A', '%25', '%7B', '%7D', '"', "'", '\n', '\0', 'é', '😀');
const part = fc.oneof(
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }),
  fc.array(fc.oneof(tricky, fc.string({ maxLength: 2 })), { maxLength: 6 }).map((pieces) => pieces.join('')),
  fc.constant(''),
);
const id = fc.array(part, { minLength: 1, maxLength: 6 });

function isPartwisePrefix(prefix: readonly string[], full: readonly string[]): boolean {
  if (prefix.length > full.length) return false;
  return prefix.every((p, i) => full[i] === p);
}

describe('assertAggregateId', () => {
  it('accepts non-empty arrays of strings, including empty parts', () => {
    expect(() => assertAggregateId(['order', '1'])).not.toThrow();
    expect(() => assertAggregateId([''])).not.toThrow();
    expect(() => assertAggregateId(['a:b', '%', '\x1f'])).not.toThrow();
  });

  it('rejects a non-array with a message saying so', () => {
    for (const bad of ['order:1', undefined, null, 42, { 0: 'order' }]) {
      expect(() => assertAggregateId(bad)).toThrow(InvalidAggregateIdError);
    }
    expect(() => assertAggregateId('order:1')).toThrow(/expected an array of string parts.*"order:1"/);
    expect(() => assertAggregateId(undefined)).toThrow(/got undefined/);
  });

  it('rejects an empty array', () => {
    expect(() => assertAggregateId([])).toThrow(InvalidAggregateIdError);
    expect(() => assertAggregateId([])).toThrow(/at least one part/);
  });

  it('rejects a non-string part and names its position', () => {
    expect(() => assertAggregateId(['order', 1])).toThrow(InvalidAggregateIdError);
    expect(() => assertAggregateId(['order', 1])).toThrow(/part 1 is not a string \(got 1\)/);
    expect(() => assertAggregateId([null])).toThrow(/part 0 is not a string \(got null\)/);
    expect(() => assertAggregateId(['a', 'b', undefined])).toThrow(/part 2/);
  });

  it('errors carry a stable code and name', () => {
    try {
      assertAggregateId([]);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidAggregateIdError);
      expect((error as InvalidAggregateIdError).code).toBe('INVALID_AGGREGATE_ID');
      expect((error as InvalidAggregateIdError).name).toBe('InvalidAggregateIdError');
      expect((error as Error).message).toMatch(/^invalid aggregate ID: /);
    }
  });
});

describe('assertIdPrefix', () => {
  it('accepts an empty prefix and arrays of strings', () => {
    expect(() => assertIdPrefix([])).not.toThrow();
    expect(() => assertIdPrefix(['order'])).not.toThrow();
    expect(() => assertIdPrefix([''])).not.toThrow();
  });

  it('rejects a non-array and non-string parts with InvalidAggregateIdError', () => {
    expect(() => assertIdPrefix('order')).toThrow(InvalidAggregateIdError);
    expect(() => assertIdPrefix('order')).toThrow(/prefix must be an array/);
    expect(() => assertIdPrefix(undefined)).toThrow(InvalidAggregateIdError);
    expect(() => assertIdPrefix(['order', 7])).toThrow(InvalidAggregateIdError);
    expect(() => assertIdPrefix(['order', 7])).toThrow(/prefix part 1 is not a string \(got 7\)/);
  });
});

describe('encodeAggregateId / decodeAggregateId', () => {
  it('round-trips every ID (property)', () => {
    fc.assert(
      fc.property(id, (parts) => {
        expect(decodeAggregateId(encodeAggregateId(parts))).toEqual(parts);
      }),
      { numRuns: 2000 },
    );
  });

  it('is injective: different IDs never share an encoding (property)', () => {
    fc.assert(
      fc.property(id, id, (a, b) => {
        fc.pre(!sameAggregateId(a, b));
        expect(encodeAggregateId(a)).not.toBe(encodeAggregateId(b));
      }),
      { numRuns: 2000 },
    );
  });

  it('is injective on IDs built from the reserved characters only (property)', () => {
    const small = fc.array(
      fc.array(tricky, { maxLength: 3 }).map((p) => p.join('')),
      { minLength: 1, maxLength: 3 },
    );
    fc.assert(
      fc.property(small, small, (a, b) => {
        expect(encodeAggregateId(a) === encodeAggregateId(b)).toBe(sameAggregateId(a, b));
      }),
      { numRuns: 3000 },
    );
  });

  it('never leaves a ":", "{" or "}" inside an encoded part (property)', () => {
    fc.assert(
      fc.property(part, (p) => {
        const encoded = encodeIdPart(p);
        expect(encoded).not.toMatch(/[:{}]/);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(id, (parts) => {
        const encoded = encodeAggregateId(parts);
        // The separators are the only colons: one fewer than the parts.
        expect(encoded.split(':').length).toBe(parts.length);
        expect(encoded).not.toMatch(/[{}]/);
      }),
      { numRuns: 2000 },
    );
  });

  it('escapes the reserved characters as documented', () => {
    expect(encodeAggregateId(['order', '123'])).toBe('order:123');
    expect(encodeAggregateId(['a:b', '%', '{x}'])).toBe('a%3Ab:%25:%7Bx%7D');
    expect(encodeAggregateId(['', ''])).toBe(':');
    expect(decodeAggregateId(':')).toEqual(['', '']);
    expect(decodeAggregateId('%253A')).toEqual(['%3A']);
  });

  it('keeps the four look-alike IDs of the spec distinct', () => {
    const ids = [
      ['order:1', 'item'],
      ['order', '1', 'item'],
      ['mem\x1f1', 'item'],
      ['mem', '1\x1fitem'],
    ];
    const encoded = ids.map(encodeAggregateId);
    expect(new Set(encoded).size).toBe(4);
    for (let i = 0; i < ids.length; i++) expect(decodeAggregateId(encoded[i] as string)).toEqual(ids[i]);
  });
});

describe('hasIdPrefix', () => {
  it('equals a part-wise prefix check (property)', () => {
    const prefixOf = id.chain((full) =>
      fc.tuple(
        fc.constant(full),
        fc.oneof(
          fc.integer({ min: 0, max: full.length }).map((n) => full.slice(0, n)),
          fc.array(part, { maxLength: 4 }),
        ),
      ),
    );
    fc.assert(
      fc.property(prefixOf, ([full, prefix]) => {
        expect(hasIdPrefix(encodeAggregateId(full), prefix)).toBe(isPartwisePrefix(prefix, full));
      }),
      { numRuns: 3000 },
    );
  });

  it('matches whole parts only', () => {
    expect(hasIdPrefix(encodeAggregateId(['order', '12']), ['order', '1'])).toBe(false);
    expect(hasIdPrefix(encodeAggregateId(['order:1', 'item']), ['order'])).toBe(false);
    expect(hasIdPrefix(encodeAggregateId(['order', '1', 'item']), ['order'])).toBe(true);
    expect(hasIdPrefix(encodeAggregateId(['order', '1', 'item']), ['order', '1'])).toBe(true);
    expect(hasIdPrefix(encodeAggregateId(['order']), ['order', ''])).toBe(false);
    expect(hasIdPrefix(encodeAggregateId(['', 'a']), [''])).toBe(true);
    expect(hasIdPrefix(encodeAggregateId(['a']), [''])).toBe(false);
    expect(hasIdPrefix(encodeAggregateId(['anything']), [])).toBe(true);
  });
});
