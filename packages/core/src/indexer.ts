import type { AggregateId } from './id.js';
import type { Event, EventMap, EventOf } from './event.js';
import { InvalidArgumentError } from './errors.js';
import { hasLoneSurrogate, LONE_SURROGATE_PROBLEM } from './text.js';

/** What one event says about its aggregate's indexed metadata. */
export interface Index {
  /** The aggregate's new status; `""` clears it. Absent leaves the status as it was. */
  readonly status?: string;
  /** Label values to set; a value of `""` removes that label. */
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * Derives index updates from an appended batch, one entry per event (or fewer; missing and
 * `undefined` entries say nothing). Runs once per non-empty batch, at append time.
 */
export type Indexer<M extends EventMap = EventMap> = (events: readonly EventOf<M>[]) => readonly (Index | undefined)[];

/** The folded index change of one batch, as a backend applies it atomically with the append. */
export interface IndexUpdate {
  /** The status after the batch (`""` clears); absent when no event set one. */
  readonly status?: string;
  /** When the aggregate entered `status`: the batch's last event's timestamp, epoch ms. */
  readonly statusTime: number;
  /** Labels to set, and (value `""`) to remove. */
  readonly labels: Readonly<Record<string, string>>;
}

/** An aggregate in a status, and when it entered it. */
export interface StatusEntry {
  readonly id: AggregateId;
  readonly timestamp: Date;
}

/**
 * Folds a batch's indexes in order: the last status given wins and labels merge.
 * Returns undefined when the batch says nothing.
 */
export function foldIndexes(indexes: readonly (Index | undefined)[], events: readonly Event[]): IndexUpdate | undefined {
  // Checked through an `unknown` copy: narrowing the readonly parameter itself with
  // Array.isArray would widen its elements to any.
  const checked: unknown = indexes;
  if (!Array.isArray(checked)) {
    throw new InvalidArgumentError('indexer result', 'the indexer must return an array', indexes);
  }
  let status: string | undefined;
  let labels: Record<string, string> | undefined;
  for (const index of indexes) {
    if (index == null) continue;
    if (index.status !== undefined) {
      if (typeof index.status !== 'string') {
        throw new InvalidArgumentError('index status', 'must be a string', index.status);
      }
      if (hasLoneSurrogate(index.status)) throw new InvalidArgumentError('index status', LONE_SURROGATE_PROBLEM, index.status);
      status = index.status;
    }
    if (index.labels !== undefined) {
      for (const [name, value] of Object.entries(index.labels)) {
        if (name === '') throw new InvalidArgumentError('index label name', 'must not be empty', name);
        if (hasLoneSurrogate(name)) throw new InvalidArgumentError('index label name', LONE_SURROGATE_PROBLEM, name);
        if (typeof value !== 'string') {
          throw new InvalidArgumentError(`index label ${JSON.stringify(name)}`, 'must be a string', value);
        }
        if (hasLoneSurrogate(value)) throw new InvalidArgumentError(`index label ${JSON.stringify(name)}`, LONE_SURROGATE_PROBLEM, value);
        (labels ??= {})[name] = value;
      }
    }
  }
  if (status === undefined && labels === undefined) return undefined;
  const last = events[events.length - 1] as Event;
  const update: { status?: string; statusTime: number; labels: Record<string, string> } = {
    statusTime: last.timestamp.getTime(),
    labels: labels ?? {},
  };
  if (status !== undefined) update.status = status;
  return update;
}
