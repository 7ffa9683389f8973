import type { Config } from '../config.js';
import { InvalidArgumentError } from '../errors.js';
import type { EventMap, EventOf, NewEvent } from '../event.js';
import { Executor, type Command, type ExecutorOptions } from '../executor.js';
import { ownAggregateId, type AggregateId } from '../id.js';
import { createMemoryStore } from '../memory/index.js';
import { assertDeepEqual, describeError, errorMatcher, fail, refuseAwait, type ErrorCheck, type ErrorClass } from './assertions.js';
import {
  appendGiven,
  assertEventArray,
  comparable,
  DEFAULT_SPEC_ID,
  listEvents,
  normalizeExpected,
  type ExpectedEvent,
} from './given-events.js';

/** What `commandSpec` needs: the executor's own options, plus where the test runs. */
export interface CommandSpecOptions<S, M extends EventMap> extends ExecutorOptions<S, M> {
  /** The aggregate the history and the command go to. Default `['test-aggregate']`. */
  readonly id?: AggregateId;
  /** The store's config (an indexer, `trimEvents`, …), as your program opens its store with. */
  readonly config?: Config<M>;
}

/** What a command did: the state after it and the events it stored. */
export interface CommandOutcome<S, M extends EventMap> {
  readonly state: S;
  readonly events: readonly EventOf<M>[];
}

/** Starts a scenario from the aggregate's history. */
export type CommandGiven<S, M extends EventMap> = (history?: readonly NewEvent<M>[]) => CommandWhen<S, M>;

/** The command of a scenario. */
export interface CommandWhen<S, M extends EventMap> {
  when(command: Command<S, M>): CommandThen<S, M>;
}

/**
 * The expectation of a scenario. Each method runs the scenario on a new memory store and returns
 * a promise: await it (a failed expectation rejects with an `AssertionError` from `node:assert`).
 */
export interface CommandThen<S, M extends EventMap> {
  /**
   * Expects the command to succeed and store exactly `expected`, in order (`[]`: nothing),
   * compared by type and data as stored. Resolves with the outcome for further checks.
   */
  then(expected: readonly ExpectedEvent<M>[]): Promise<CommandOutcome<S, M>>;
  /** Expects the command to succeed and leave the aggregate in `expected` (deep equality). */
  thenState(expected: S): Promise<CommandOutcome<S, M>>;
  /**
   * Expects the command to throw: any error; an instance of `errorClass` (that passes `check`,
   * if given); or an error `check` does not return `false` for. Resolves with the error.
   */
  thenThrows(): Promise<unknown>;
  thenThrows(check: ErrorCheck): Promise<unknown>;
  thenThrows<E extends Error>(errorClass: ErrorClass<E>, check?: ErrorCheck<E>): Promise<E>;
}

type Run<S, M extends EventMap> = { ok: true; outcome: CommandOutcome<S, M> } | { ok: false; error: unknown };

/**
 * Given/when/then tests for commands, on the memory backend: the history is appended to a new
 * store, the command runs through a real executor, and the expectation checks what it stored.
 *
 * ```ts
 * const given = commandSpec<Cart, CartEvents>({ initialState, appliers });
 *
 * await given([{ type: 'ItemAdded', data: { sku: 'KB-01', quantity: 9 } }])
 *   .when(addItem('MS-02', 1))
 *   .then([{ type: 'ItemAdded', data: { sku: 'MS-02', quantity: 1 } }]);
 *
 * await given([{ type: 'ItemAdded', data: { sku: 'KB-01', quantity: 10 } }])
 *   .when(addItem('MS-02', 1))
 *   .thenThrows(CartFullError);
 * ```
 * Works under any test runner (vitest, node:test, …): it depends on none, and fails with
 * `AssertionError` from `node:assert`.
 *
 * @typeParam S - the aggregate state
 * @typeParam M - the event map: history, `raise` and expected events are typed by it
 */
export function commandSpec<S, M extends EventMap>(options: CommandSpecOptions<S, M>): CommandGiven<S, M> {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('commandSpec options', 'must be an object', options);
  const id = ownAggregateId(options.id ?? DEFAULT_SPEC_ID);
  return (history = []) => {
    assertEventArray(history, 'given history');
    return {
      when: (command) => {
        if (typeof command !== 'function')
          throw new InvalidArgumentError('when command', 'must be a function (state, aggregator) => …', command);
        const run = () => runCommand(options, id, history, command);
        return {
          then: async (expected: readonly ExpectedEvent<M>[], ...rest: unknown[]) => {
            if (refuseAwait(rest[0], 'given(…).when(…)')) return undefined;
            assertEventArray(expected, 'expected events');
            const normalized = normalizeExpected(expected);
            const outcome = succeeded(await run(), `${normalized.length} event(s): ${listEvents(normalized)}`);
            assertDeepEqual(comparable(outcome.events), normalized, 'the command stored other events than expected');
            return outcome;
          },
          thenState: async (expected: S) => {
            const outcome = succeeded(await run(), 'the expected state');
            assertDeepEqual(outcome.state, expected, 'the state after the command is not the expected state');
            return outcome;
          },
          thenThrows: async (expected?: unknown, check?: unknown) => {
            const matcher = errorMatcher(expected, check);
            const result = await run();
            if (result.ok) {
              const stored = listEvents(comparable(result.outcome.events));
              fail(`expected the command to throw ${matcher.description}, but it succeeded and stored ${stored}`);
            }
            const mismatch = matcher.mismatch(result.error);
            if (mismatch !== undefined) fail(`expected the command to throw ${matcher.description}, but ${mismatch}`, result.error);
            return result.error;
          },
        } as CommandThen<S, M>;
      },
    };
  };
}

function succeeded<S, M extends EventMap>(result: Run<S, M>, expected: string): CommandOutcome<S, M> {
  if (!result.ok) fail(`expected the command to succeed with ${expected}, but it threw ${describeError(result.error)}`, result.error);
  return result.outcome;
}

/** Runs one scenario on a new store; only the command's own failure is caught, setup failures propagate. */
async function runCommand<S, M extends EventMap>(
  options: CommandSpecOptions<S, M>,
  id: AggregateId,
  history: readonly NewEvent<M>[],
  command: Command<S, M>,
): Promise<Run<S, M>> {
  const store = createMemoryStore<M>(options.config);
  try {
    const executor = new Executor<S, M>(store, options);
    await appendGiven(store, history, id);
    let state: S;
    try {
      state = await executor.exec(id, command);
    } catch (error) {
      return { ok: false, error };
    }
    return { ok: true, outcome: { state, events: await store.getEvents(id, history.length) } };
  } finally {
    await store.close();
  }
}
