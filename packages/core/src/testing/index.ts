/**
 * Given/when/then helpers to test your own commands and projections on the in-memory backend.
 * They depend on no test runner (use them from vitest, node:test, or any other) and fail with
 * `AssertionError` from `node:assert`.
 *
 * ```ts
 * import { commandSpec } from '@timebox/core/testing';
 *
 * const given = commandSpec<Cart, CartEvents>({ initialState, appliers });
 * await given([]).when(addItem('KB-01', 2)).then([{ type: 'ItemAdded', data: { sku: 'KB-01', quantity: 2 } }]);
 * ```
 *
 * @packageDocumentation
 */
export {
  commandSpec,
  type CommandGiven,
  type CommandOutcome,
  type CommandSpecOptions,
  type CommandThen,
  type CommandWhen,
} from './command-spec.js';
export { projectionSpec, type ProjectionGiven, type ProjectionSpecOptions, type ProjectionThen } from './projection-spec.js';
export type { ErrorCheck, ErrorClass } from './assertions.js';
export type { ExpectedEvent, GivenEvent } from './given-events.js';
