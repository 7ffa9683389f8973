import { InvalidPayloadError } from './errors.js';

/**
 * Serializes a value to JSON text, refusing what JSON would lose or mangle: BigInt, functions,
 * symbols, non-finite numbers, Maps and Sets, cycles, and `undefined` at the top level. `undefined` object
 * properties are dropped, as JSON always does (optional fields stay optional).
 */
export function toJson(value: unknown, what: string): string {
  if (value === undefined) throw new InvalidPayloadError(what, 'it is undefined');
  let text: string | undefined;
  try {
    text = JSON.stringify(value, rejectUnsupported);
  } catch (cause) {
    if (cause instanceof UnsupportedValue) {
      throw new InvalidPayloadError(what, cause.detail);
    }
    const reason = cause instanceof Error ? cause.message : String(cause);
    const problem = /circular/i.test(reason) ? 'it holds a cycle' : reason;
    throw new InvalidPayloadError(what, problem, { cause });
  }
  if (text === undefined) throw new InvalidPayloadError(what, `a ${typeof value} has no JSON form`);
  return text;
}

class UnsupportedValue extends InvalidPayloadError {
  constructor(readonly detail: string) {
    super('value', detail);
  }
}

function rejectUnsupported(this: unknown, key: string, value: unknown): unknown {
  switch (typeof value) {
    case 'bigint':
      throw new UnsupportedValue(`${where(key)} is a BigInt`);
    case 'function':
      throw new UnsupportedValue(`${where(key)} is a function`);
    case 'symbol':
      throw new UnsupportedValue(`${where(key)} is a symbol`);
    case 'number':
      if (!Number.isFinite(value)) throw new UnsupportedValue(`${where(key)} is ${value}`);
      return value;
    case 'object':
      // Maps and Sets have no JSON form: JSON.stringify would silently store `{}`.
      if (value instanceof Map) throw new UnsupportedValue(`${where(key)} is a Map (convert it to an object or array)`);
      if (value instanceof Set) throw new UnsupportedValue(`${where(key)} is a Set (convert it to an array)`);
      return value;
    default:
      return value;
  }
}

function where(key: string): string {
  return key === '' ? 'the value' : `property ${JSON.stringify(key)}`;
}
