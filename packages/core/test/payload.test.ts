import { describe, expect, it } from 'vitest';
import { InvalidPayloadError } from '../src/errors.js';
import { toJson } from '../src/payload.js';

function rejection(value: unknown): InvalidPayloadError {
  try {
    toJson(value, 'the payload');
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidPayloadError);
    return error as InvalidPayloadError;
  }
  throw new Error(`toJson accepted ${String(value)}`);
}

describe('toJson', () => {
  it('accepts plain JSON values and returns their JSON text', () => {
    const values: unknown[] = [
      null,
      true,
      false,
      0,
      -1.5,
      '',
      'text with "quotes" and \x1f',
      [],
      [1, 'two', null, [3]],
      {},
      { a: 1, nested: { b: [true, { c: 'd' }] } },
    ];
    for (const value of values) {
      const text = toJson(value, 'the payload');
      expect(text).toBe(JSON.stringify(value));
      expect(JSON.parse(text)).toEqual(value);
    }
  });

  it('drops undefined object properties, like JSON does', () => {
    expect(toJson({ a: 1, b: undefined }, 'the payload')).toBe('{"a":1}');
  });

  it('rejects a BigInt at the top level', () => {
    const error = rejection(10n);
    expect(error.code).toBe('INVALID_PAYLOAD');
    expect(error.message).toMatch(/^the payload cannot be stored as JSON: /);
    expect(error.message).toMatch(/BigInt/);
  });

  it('rejects a nested BigInt and names the property', () => {
    const error = rejection({ order: { total: 5n } });
    expect(error.message).toMatch(/BigInt/);
    expect(error.message).toContain('"total"');
    expect(rejection([1, 2n]).message).toMatch(/BigInt/);
  });

  it('rejects a cycle', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(rejection(cyclic).message).toMatch(/cycle/);
    const list: unknown[] = [];
    list.push({ list });
    expect(rejection(list).message).toMatch(/cycle/);
  });

  it('rejects functions at the top level and nested', () => {
    expect(rejection(() => 1).message).toMatch(/function/);
    const nested = rejection({ handler: () => 1 });
    expect(nested.message).toMatch(/function/);
    expect(nested.message).toContain('"handler"');
  });

  it('rejects symbols at the top level and nested', () => {
    expect(rejection(Symbol('s')).message).toMatch(/symbol/);
    expect(rejection({ tag: Symbol('s') }).message).toMatch(/symbol/);
  });

  it('rejects undefined at the top level', () => {
    expect(rejection(undefined).message).toMatch(/undefined/);
  });

  it('rejects NaN and Infinity, top level and nested', () => {
    expect(rejection(Number.NaN).message).toMatch(/NaN/);
    expect(rejection(Number.POSITIVE_INFINITY).message).toMatch(/Infinity/);
    expect(rejection({ price: Number.NEGATIVE_INFINITY }).message).toMatch(/-Infinity/);
    expect(rejection([Number.NaN]).message).toMatch(/NaN/);
  });

  it('rejects Maps and Sets, which JSON would store as {}', () => {
    expect(rejection(new Map([['a', 1]])).message).toMatch(/Map/);
    expect(rejection({ tags: new Set(['x']) }).message).toMatch(/property "tags" is a Set/);
  });

  it('names what was being serialized', () => {
    try {
      toJson(1n, 'the snapshot value');
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).toMatch(/^the snapshot value cannot be stored as JSON/);
    }
  });
});
