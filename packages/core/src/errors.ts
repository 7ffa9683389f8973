import type { AggregateId } from './id.js';
import type { Event } from './event.js';

/** Base class of every error Timebox raises on purpose. `code` is stable across releases. */
export class TimeboxError extends Error {
  /** A stable, machine-readable name for the failure. */
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * The aggregate's log did not end where the caller expected. `newEvents` holds the events stored
 * from `expectedSequence` on (empty when the caller is ahead of the log), so a caller can catch up
 * without another read.
 */
export class VersionConflictError extends TimeboxError {
  constructor(
    readonly aggregateId: AggregateId,
    readonly expectedSequence: number,
    readonly actualSequence: number,
    readonly newEvents: readonly Event[],
  ) {
    super(
      'VERSION_CONFLICT',
      `version conflict on ${JSON.stringify(aggregateId)}: expected next sequence ${expectedSequence}, but it is ${actualSequence}`,
    );
  }
}

/** An exec kept losing to concurrent writers and gave up after `maxRetries` retries. */
export class MaxRetriesExceededError extends TimeboxError {
  constructor(
    readonly aggregateId: AggregateId,
    readonly retries: number,
    options?: ErrorOptions,
  ) {
    super(
      'MAX_RETRIES_EXCEEDED',
      `exec on ${JSON.stringify(aggregateId)} still conflicted after ${retries} retries (raise Config.maxRetries, or reduce contention on this aggregate)`,
      options,
    );
  }
}

/** The store (or the backend under it) has been closed. */
export class StoreClosedError extends TimeboxError {
  constructor(operation: string) {
    super('STORE_CLOSED', `cannot ${operation}: the store is closed`);
  }
}

/** The backend has no archive support. */
export class ArchivingDisabledError extends TimeboxError {
  constructor(backend: string) {
    super('ARCHIVING_DISABLED', `the ${backend} backend does not support archiving`);
  }
}

/** `consumeArchive` was called without a handler function. */
export class ArchiveHandlerMissingError extends TimeboxError {
  constructor() {
    super('ARCHIVE_HANDLER_MISSING', 'consumeArchive needs a handler function, got none');
  }
}

/** `readAll`, `project` or a resuming `subscribe` on a backend without the read side (`capabilities.readSide`). */
export class ReadSideUnavailableError extends TimeboxError {
  constructor(backend: string) {
    super(
      'READ_SIDE_UNAVAILABLE',
      `the ${backend} backend cannot read its log or keep projections (it does not declare capabilities.readSide)`,
    );
  }
}

/** `subscribe` on a store whose backend has no event feed. */
export class HubUnavailableError extends TimeboxError {
  constructor(backend: string) {
    super('HUB_UNAVAILABLE', `the ${backend} backend cannot deliver appended events to subscribers (it has no event feed)`);
  }
}

/** A subscriber's handler threw or rejected; `event` is the event it was handling. */
export class SubscriberError extends TimeboxError {
  constructor(
    readonly event: Event,
    options: ErrorOptions,
  ) {
    super(
      'SUBSCRIBER_FAILED',
      `subscriber failed on ${event.type} #${event.sequence} of ${JSON.stringify(event.aggregateId)}: ${causeText(options.cause)}`,
      options,
    );
  }
}

/**
 * A subscriber fell more than its buffer behind, so `count` events were not delivered to it.
 * Reported in stream order, just before the next event it receives. `first` and `last` name the
 * first and last events dropped.
 */
export class EventsDroppedError extends TimeboxError {
  constructor(
    readonly count: number,
    readonly first: { readonly aggregateId: AggregateId; readonly sequence: number },
    readonly last: { readonly aggregateId: AggregateId; readonly sequence: number },
    bufferSize: number,
  ) {
    super(
      'EVENTS_DROPPED',
      `subscriber fell behind by more than its buffer of ${bufferSize} events: ${count} events were not delivered, ` +
        `from #${first.sequence} of ${JSON.stringify(first.aggregateId)} to #${last.sequence} of ${JSON.stringify(last.aggregateId)} ` +
        '(read them back with getEvents, or raise bufferSize)',
    );
  }
}

/** The backend's feed may have missed appends (e.g. its connection dropped); `reason` says how. */
export class HubGapError extends TimeboxError {
  constructor(
    readonly backend: string,
    readonly reason: string,
  ) {
    super('HUB_GAP', `the ${backend} event feed may have missed appended events: ${reason}`);
  }
}

/** A configuration value broke a rule; the message names the field and the rule. */
export class ConfigError extends TimeboxError {
  constructor(
    readonly field: string,
    rule: string,
    received: unknown,
  ) {
    super('INVALID_CONFIG', `invalid config: ${field} ${rule} (got ${describe(received)})`);
  }
}

/** An aggregate ID was not a non-empty array of strings. */
export class InvalidAggregateIdError extends TimeboxError {
  constructor(problem: string, received: unknown) {
    super('INVALID_AGGREGATE_ID', `invalid aggregate ID: ${problem} (got ${describe(received)})`);
  }
}

/** An event was malformed: not an object, an empty or non-string type, or a bad timestamp. */
export class InvalidEventError extends TimeboxError {
  constructor(index: number, problem: string) {
    super('INVALID_EVENT', `invalid event at index ${index}: ${problem}`);
  }
}

/** A payload or snapshot value that JSON cannot carry faithfully. */
export class InvalidPayloadError extends TimeboxError {
  constructor(what: string, problem: string, options?: ErrorOptions) {
    super('INVALID_PAYLOAD', `${what} cannot be stored as JSON: ${problem}`, options);
  }
}

/** A sequence number that is negative, fractional, unsafe, or out of range. */
export class InvalidSequenceError extends TimeboxError {
  constructor(name: string, problem: string, received: unknown) {
    super('INVALID_SEQUENCE', `invalid ${name}: ${problem} (got ${describe(received)})`);
  }
}

/**
 * A checkpoint that this store cannot resume from: not a checkpoint, altered, written by a newer
 * release, or another store's. Also reported (never silently reset) when a projection's stored
 * checkpoint cannot be read.
 */
export class InvalidCheckpointError extends TimeboxError {
  constructor(name: string, problem: string, received: unknown) {
    super('INVALID_CHECKPOINT', `invalid ${name}: it ${problem} (got ${describe(received)})`);
  }
}

/**
 * A page cursor that this query cannot go on from: not a cursor, altered, or from another store or
 * another query (a cursor of `listAggregatesByLabel('color', 'red')` does not page
 * `listAggregatesByLabel('color', 'blue')`). Never answered with a wrong page.
 */
export class InvalidCursorError extends TimeboxError {
  constructor(problem: string, received: unknown) {
    super('INVALID_CURSOR', `invalid cursor: it ${problem} (got ${describe(received)})`);
  }
}

/**
 * A projection runner could not go on: its handler kept failing (reported to `onError` while it
 * retries), or its stored checkpoint cannot be read. `projection` names it; `cause` is the failure.
 */
export class ProjectionError extends TimeboxError {
  constructor(
    readonly projection: string,
    problem: string,
    options?: ErrorOptions,
  ) {
    super(
      'PROJECTION_FAILED',
      `projection ${JSON.stringify(projection)}: ${problem}${options?.cause === undefined ? '' : `: ${causeText(options.cause)}`}`,
      options,
    );
  }
}

/** Any other argument of the wrong shape (a label name that is not a string, say). */
export class InvalidArgumentError extends TimeboxError {
  constructor(name: string, problem: string, received: unknown) {
    super('INVALID_ARGUMENT', `invalid ${name}: ${problem} (got ${describe(received)})`);
  }
}

function causeText(cause: unknown): string {
  return cause instanceof Error ? cause.message : describe(cause);
}

/** A short, safe description of a received value for error messages. */
export function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a symbol';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return 'an object';
}
