export type { AggregateId } from './id.js';
export { assertAggregateId, decodeAggregateId, encodeAggregateId, encodeIdPart, hasIdPrefix, ownAggregateId, sameAggregateId } from './id.js';
export { Event, type EventMap, type EventOf, type EventRecord, type EventType, type NewEvent } from './event.js';
export { DEFAULT_CONFIG, requirePositiveInteger, resolveConfig, type Config, type ResolvedConfig } from './config.js';
export { foldIndexes, type Index, type Indexer, type IndexUpdate, type StatusEntry } from './indexer.js';
export type {
  AppendRequest,
  AppendResult,
  ArchiveRecordData,
  Backend,
  BackendCapabilities,
  SnapshotRecord,
} from './backend.js';
export {
  createStore,
  Store,
  type ArchiveHandler,
  type ArchiveRecord,
  type ConsumeArchiveOptions,
  type Snapshot,
} from './store.js';
export { Aggregator, type Applier, type Appliers, type SuccessAction } from './aggregator.js';
export {
  createExecutor,
  Executor,
  type Command,
  type ExecutorLogger,
  type ExecutorOptions,
  type SnapshotCodec,
} from './executor.js';
export {
  ArchiveHandlerMissingError,
  ArchivingDisabledError,
  ConfigError,
  InvalidAggregateIdError,
  InvalidArgumentError,
  InvalidEventError,
  InvalidPayloadError,
  InvalidSequenceError,
  MaxRetriesExceededError,
  StoreClosedError,
  TimeboxError,
  VersionConflictError,
} from './errors.js';
export { assertSequence } from './validate.js';
export { holdWhile, type HoldRenewal } from './hold-renewal.js';
export { toJson } from './payload.js';
export { Attr as TelemetryAttributes, INSTRUMENTATION_NAME } from './telemetry.js';
