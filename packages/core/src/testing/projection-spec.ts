import { InvalidArgumentError, type ProjectionError } from '../errors.js';
import type { EventMap, EventType } from '../event.js';
import { ownAggregateId, type AggregateId } from '../id.js';
import { createMemoryStore } from '../memory/index.js';
import type { BatchProjectionHandler, ProjectionHandler, ProjectOptions } from '../projection.js';
import { assertDeepEqual, describeError, errorMatcher, fail, refuseAwait, type ErrorCheck, type ErrorClass } from './assertions.js';
import { appendGiven, assertEventArray, DEFAULT_SPEC_ID, type GivenEvent } from './given-events.js';

/** What `projectionSpec` needs: a fresh read model per scenario and the handler that writes it. */
export interface ProjectionSpecOptions<M extends EventMap, R, K extends EventType<M> = EventType<M>> {
  /** A new, empty read model for each scenario: an object, a map, a list of recorded calls, or a test database. */
  readonly readModel: () => R | Promise<R>;
  /** Builds the projection's handler over the read model, as your program builds it over the real one. */
  readonly handler: (readModel: R) => ProjectionHandler<M, K> | BatchProjectionHandler<M, K>;
  /** `store.project` options your program passes (`types`, `aggregatePrefix`, `batchSize`). */
  readonly options?: Pick<ProjectOptions<K>, 'types' | 'aggregatePrefix' | 'batchSize'>;
  /** The projection's name, as its handler sees it in `context.projection`. Default `'spec'`. */
  readonly name?: string;
  /** The aggregate of history events that name none. Default `['test-aggregate']`. */
  readonly id?: AggregateId;
}

/** Starts a scenario from the store's history: events in log order, each of its own aggregate. */
export type ProjectionGiven<M extends EventMap, R> = (history: readonly GivenEvent<M>[]) => ProjectionThen<R>;

/**
 * The expectation of a projection scenario. Each method runs the scenario on a new memory store
 * and returns a promise: await it (a failed expectation rejects with an `AssertionError`).
 */
export interface ProjectionThen<R> {
  /**
   * Expects the handler to handle every event and leave the read model equal (deeply) to
   * `expected`, or, given a function, to pass that check (which fails by returning `false` or
   * throwing). Resolves with the read model.
   */
  then(expected: R | ((readModel: R) => boolean | void | Promise<boolean | void>)): Promise<R>;
  /** Expects the handler to throw on some event; the same matchers as a command spec's `thenThrows`. */
  thenThrows(): Promise<unknown>;
  thenThrows(check: ErrorCheck): Promise<unknown>;
  thenThrows<E extends Error>(errorClass: ErrorClass<E>, check?: ErrorCheck<E>): Promise<E>;
}

type Run<R> = { ok: true; readModel: R } | { ok: false; error: unknown };

/**
 * Given/then tests for projections, on the memory backend: the history is appended to a new store
 * and a real `store.project` runner hands it to the handler until caught up.
 *
 * ```ts
 * const given = projectionSpec<CartEvents, Map<string, number>>({
 *   readModel: () => new Map(),
 *   handler: (totals) => makeDispatcher<CartEvents>({
 *     ItemAdded: ({ quantity }, event) => void totals.set(event.aggregateId.join('/'), (totals.get(event.aggregateId.join('/')) ?? 0) + quantity),
 *   }),
 * });
 * await given([
 *   { id: ['cart', '1'], type: 'ItemAdded', data: { sku: 'KB-01', quantity: 2 } },
 *   { id: ['cart', '2'], type: 'ItemAdded', data: { sku: 'MS-02', quantity: 1 } },
 * ]).then(new Map([['cart/1', 2], ['cart/2', 1]]));
 * ```
 *
 * @typeParam M - the event map: history and handler are typed by it
 * @typeParam R - the read model
 */
export function projectionSpec<M extends EventMap, R, K extends EventType<M> = EventType<M>>(
  options: ProjectionSpecOptions<M, R, K>,
): ProjectionGiven<M, R> {
  if (options === null || typeof options !== 'object')
    throw new InvalidArgumentError('projectionSpec options', 'must be an object', options);
  if (typeof options.readModel !== 'function') {
    throw new InvalidArgumentError('readModel', 'must be a function returning a new read model', options.readModel);
  }
  if (typeof options.handler !== 'function') {
    throw new InvalidArgumentError('handler', 'must be a function building the handler over the read model', options.handler);
  }
  const id = ownAggregateId(options.id ?? DEFAULT_SPEC_ID);
  return (history) => {
    assertEventArray(history, 'given history');
    const run = () => runProjection(options, id, history);
    return {
      then: async (expected: unknown, ...rest: unknown[]) => {
        if (refuseAwait(rest[0], 'given(…)')) return undefined;
        const result = await run();
        if (!result.ok)
          fail(`expected the projection to handle every event, but its handler threw ${describeError(result.error)}`, result.error);
        if (typeof expected === 'function') {
          const verdict = await (expected as (readModel: R) => unknown)(result.readModel);
          if (verdict === false) fail('the read model failed the check');
        } else {
          assertDeepEqual(result.readModel, expected, 'the read model is not the expected one');
        }
        return result.readModel;
      },
      thenThrows: async (expected?: unknown, check?: unknown) => {
        const matcher = errorMatcher(expected, check);
        const result = await run();
        if (result.ok) fail(`expected the projection handler to throw ${matcher.description}, but it handled every event`);
        const mismatch = matcher.mismatch(result.error);
        if (mismatch !== undefined) fail(`expected the projection handler to throw ${matcher.description}, but ${mismatch}`, result.error);
        return result.error;
      },
    } as ProjectionThen<R>;
  };
}

/** Runs one scenario on a new store: the runner until caught up, or until the handler's first failure. */
async function runProjection<M extends EventMap, R, K extends EventType<M>>(
  options: ProjectionSpecOptions<M, R, K>,
  id: AggregateId,
  history: readonly GivenEvent<M>[],
): Promise<Run<R>> {
  const store = createMemoryStore<M>();
  try {
    await appendGiven(store, history, id);
    const readModel = await options.readModel();
    let reportFailure!: (error: ProjectionError) => void;
    const failure = new Promise<never>((_resolve, reject) => (reportFailure = reject));
    // A failure after the run settled has nobody left to tell.
    failure.catch(() => undefined);
    const projection = store.project(options.name ?? 'spec', options.handler(readModel), {
      ...options.options,
      // The runner retries a failing batch forever; a test wants the first failure, at once.
      retry: { initialDelayMs: 1, reportAfter: 1 },
      onError: (error) => reportFailure(error),
    });
    try {
      await Promise.race([projection.caughtUp(), failure]);
    } catch (error) {
      // The runner wraps the handler's error; the test is about the handler's own.
      return { ok: false, error: (error as ProjectionError).cause ?? error };
    } finally {
      await projection.stop();
    }
    return { ok: true, readModel };
  } finally {
    await store.close();
  }
}
