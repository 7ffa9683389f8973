import type { LogDescriptor } from './backend.js';
import { decodeCheckpoint, startPositions, type Checkpoint } from './checkpoint.js';
import { InvalidArgumentError } from './errors.js';
import type { EventMap, EventOfType, EventType } from './event.js';
import { assertIdPrefix, type AggregateId } from './id.js';
import { assertString } from './validate.js';

/** What `store.readAll` reads. */
export interface ReadAllOptions<K extends string = string> {
  /** Read after this checkpoint (a page's `checkpoint`); from the start when absent. */
  readonly after?: Checkpoint | undefined;
  /** The most events in the page, 1 to 10,000. Default 100. */
  readonly limit?: number | undefined;
  /** Only events of these types. */
  readonly types?: readonly K[] | undefined;
  /** Only events of aggregates whose ID starts with these parts. */
  readonly aggregatePrefix?: AggregateId | undefined;
}

/** A page of the log. */
export interface ReadAllPage<M extends EventMap, K extends EventType<M> = EventType<M>> {
  /** The page's events in log order. */
  readonly events: EventOfType<M, K>[];
  /** Where the page ended: pass it as `after` to read on. */
  readonly checkpoint: Checkpoint;
  /** True when the page reached the end of the log as it stood when read. */
  readonly end: boolean;
}

/** The largest page `readAll` returns. */
export const MAX_PAGE_SIZE = 10_000;
const DEFAULT_PAGE_SIZE = 100;

/** @internal Validates `readAll` options and turns them into a backend request. */
export function resolveReadAll(
  log: LogDescriptor,
  options: ReadAllOptions,
): { after: number[]; limit: number; types: readonly string[] | undefined; prefix: AggregateId | undefined } {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('readAll options', 'must be an object', options);
  const after = options.after === undefined ? startPositions(log) : decodeCheckpoint(log, options.after, 'after');
  const limit = options.limit ?? DEFAULT_PAGE_SIZE;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw new InvalidArgumentError('limit', `must be a whole number from 1 to ${MAX_PAGE_SIZE}`, limit);
  }
  const { types, prefix } = resolveLogFilter(options);
  return { after, limit, types, prefix };
}

/** @internal Validates the `types` and `aggregatePrefix` filters of `readAll` and `project`. */
export function resolveLogFilter(options: {
  readonly types?: readonly string[] | undefined;
  readonly aggregatePrefix?: AggregateId | undefined;
}): {
  types: readonly string[] | undefined;
  prefix: AggregateId | undefined;
} {
  let types: readonly string[] | undefined;
  if (options.types !== undefined) {
    const given: unknown = options.types;
    if (!Array.isArray(given)) throw new InvalidArgumentError('types', 'must be an array of event type names', given);
    const names: string[] = [];
    for (const type of given as unknown[]) {
      assertString('types[]', type, true);
      names.push(type);
    }
    types = Object.freeze(names);
  }
  let prefix: AggregateId | undefined;
  if (options.aggregatePrefix !== undefined) {
    assertIdPrefix(options.aggregatePrefix);
    prefix = options.aggregatePrefix.length === 0 ? undefined : Object.freeze([...options.aggregatePrefix]);
  }
  return { types, prefix };
}
