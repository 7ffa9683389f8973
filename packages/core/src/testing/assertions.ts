import { AssertionError, deepStrictEqual } from 'node:assert';
import { InvalidArgumentError } from '../errors.js';

/** A class of errors, as `thenThrows` takes it: `CartFullError`, `RangeError`, `Error`. */
export type ErrorClass<E extends Error = Error> = abstract new (...args: never[]) => E;

/**
 * Checks a thrown error further. Returning `false` fails the expectation; returning nothing (or
 * `true`) passes it, so a check may also make its own assertions and throw.
 */
export type ErrorCheck<E = unknown> = (error: E) => boolean | void;

/**
 * Fails with a plain `AssertionError` from `node:assert`, which vitest, node:test and other
 * runners all report with its message (and a diff where it has `actual` and `expected`).
 */
export function fail(message: string, cause?: unknown): never {
  const error = new AssertionError({ message });
  if (cause !== undefined) error.cause = cause;
  throw error;
}

/** `deepStrictEqual` whose failure starts with what was being compared, above Node's diff. */
export function assertDeepEqual(actual: unknown, expected: unknown, what: string): void {
  try {
    deepStrictEqual(actual, expected);
  } catch (error) {
    if (error instanceof AssertionError) error.message = `${what}\n${error.message}`;
    throw error;
  }
}

/** A short description of a thrown value for failure messages: `TypeError: bad quantity`. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return `a non-error value (${typeof error === 'string' ? JSON.stringify(error) : String(error)})`;
}

/** The matcher of `thenThrows`, resolved from its arguments. */
export interface ErrorMatcher {
  /** What the expectation says, for failure messages: `CartFullError`, `an error passing the check`. */
  readonly description: string;
  /** Undefined when `error` matches, else why it does not. */
  mismatch(error: unknown): string | undefined;
}

/** True for `Error` and its subclasses, false for predicates (arrow functions have no prototype). */
function isErrorClass(value: unknown): value is ErrorClass {
  return typeof value === 'function' && (value === Error || (value as { prototype?: unknown }).prototype instanceof Error);
}

/** Builds the matcher for `thenThrows()`, `thenThrows(ErrorClass, check?)` or `thenThrows(check)`. */
export function errorMatcher(expected: unknown, check: unknown): ErrorMatcher {
  if (check !== undefined && typeof check !== 'function') throw new InvalidArgumentError('thenThrows check', 'must be a function', check);
  if (expected === undefined) return { description: 'an error', mismatch: () => undefined };
  if (typeof expected !== 'function') {
    throw new InvalidArgumentError('thenThrows expectation', 'must be an error class or a check function', expected);
  }
  if (isErrorClass(expected)) {
    const checkError = check as ErrorCheck | undefined;
    return {
      description: expected.name,
      mismatch: (error) => {
        if (!(error instanceof expected)) return `it threw ${describeError(error)}`;
        if (checkError !== undefined && checkError(error) === false) return `it threw ${describeError(error)}, which failed the check`;
        return undefined;
      },
    };
  }
  if (check !== undefined)
    throw new InvalidArgumentError('thenThrows', 'takes a check as its second argument only after an error class', check);
  const predicate = expected as ErrorCheck;
  return {
    description: 'an error passing the check',
    mismatch: (error) => (predicate(error) === false ? `it threw ${describeError(error)}, which failed the check` : undefined),
  };
}

/**
 * Refuses a spec being awaited as a promise: `then` makes it look like one, so `await
 * given(events)` (with the expectation forgotten) would otherwise pass without checking anything.
 * Awaiting calls `then(resolve, reject)`: this rejects that await and answers true.
 */
export function refuseAwait(reject: unknown, spec: string): boolean {
  if (typeof reject !== 'function') return false;
  (reject as (error: Error) => void)(
    new TypeError(`${spec} was awaited without an expectation: await ${spec}.then(expected) (or .thenThrows(...)) instead`),
  );
  return true;
}
