export type { AggregateId } from './id.js';
export {
  assertAggregateId,
  decodeAggregateId,
  encodeAggregateId,
  encodeIdPart,
  hasIdPrefix,
  ownAggregateId,
  sameAggregateId,
} from './id.js';
export {
  Event,
  type EventMap,
  type EventOf,
  type EventOfType,
  type EventRecord,
  type EventType,
  type NewEvent,
  type StoredEventRecord,
} from './event.js';
export {
  makeDispatcher,
  makeHandler,
  type DispatchTable,
  type EventHandler,
  type HandlesTypes,
  type PayloadHandler,
  type SubscribeHandler,
} from './event-handlers.js';
export { DEFAULT_SUBSCRIBER_BUFFER, type SubscribeOptions, type Unsubscribe } from './hub.js';
export type { SubscriptionError } from './subscription.js';
export { DEFAULT_CONFIG, requirePositiveInteger, resolveConfig, type Config, type ResolvedConfig } from './config.js';
export { foldIndexes, type Index, type Indexer, type IndexUpdate, type StatusEntry } from './indexer.js';
export type {
  AppendRequest,
  AppendResult,
  ArchiveRecordData,
  Backend,
  BackendCapabilities,
  Feed,
  FeedSink,
  LogDescriptor,
  ListPage,
  ListRequest,
  LogEntry,
  LogPage,
  ProjectionRecord,
  ProjectionStore,
  ProjectionWrite,
  ReadLogRequest,
  ReadSideBackend,
  SnapshotRecord,
  StatusListEntry,
} from './backend.js';
export type { IterateOptions, Page, PageOptions } from './list-page.js';
export { compareCheckpoints, type Checkpoint } from './checkpoint.js';
export { createStore, Store, type ArchiveHandler, type ArchiveRecord, type ConsumeArchiveOptions, type Snapshot } from './store.js';
export { MAX_PAGE_SIZE, type ReadAllOptions, type ReadAllPage } from './read-all.js';
export {
  MAX_COUNTED_LAG,
  type BatchProjectionHandler,
  type Projection,
  type ProjectionContext,
  type ProjectionHandler,
  type ProjectionStart,
  type ProjectionStatus,
  type ProjectOptions,
} from './projection.js';
export { Aggregator, type Applier, type Appliers, type SuccessAction } from './aggregator.js';
export { createExecutor, Executor, type Command, type ExecutorLogger, type ExecutorOptions, type SnapshotCodec } from './executor.js';
export {
  ArchiveHandlerMissingError,
  ArchivingDisabledError,
  ConfigError,
  EventsDroppedError,
  HubGapError,
  HubUnavailableError,
  InvalidAggregateIdError,
  InvalidArgumentError,
  InvalidCheckpointError,
  InvalidCursorError,
  InvalidEventError,
  InvalidPayloadError,
  InvalidSequenceError,
  MaxRetriesExceededError,
  ProjectionError,
  ReadSideUnavailableError,
  StoreClosedError,
  SubscriberError,
  TimeboxError,
  VersionConflictError,
} from './errors.js';
export { assertSequence } from './validate.js';
export { holdWhile, type HoldRenewal } from './hold-renewal.js';
export { WakeSignal } from './wake-signal.js';
export { toJson } from './payload.js';
export { compareCodeUnits, hasLoneSurrogate } from './text.js';
export { Attr as TelemetryAttributes, INSTRUMENTATION_NAME } from './telemetry.js';
