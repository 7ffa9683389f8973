import type { AggregateId } from './id.js';
import type { EventRecord } from './event.js';
import type { IndexUpdate } from './indexer.js';

/**
 * The contract a persistence backend implements. Core does everything else: validation,
 * sequencing copies, JSON, indexing, retries, caching and telemetry. IDs arrive validated;
 * `encodeAggregateId` gives a collision-free string key for them.
 *
 * Every method may assume it is not called after `close()` resolved; core guards that.
 */
export interface Backend {
  /** A short name used in error messages, e.g. `"memory"`. */
  readonly name: string;
  /** What the backend supports beyond the required methods. */
  readonly capabilities: BackendCapabilities;

  /** Resolves once the backend can serve requests. */
  ready(): Promise<void>;
  /** Releases connections and resources. Called once. */
  close(): Promise<void>;

  /**
   * Atomically: if the aggregate's next sequence equals `expectedSequence`, stores `events`
   * (their sequences already run from `expectedSequence`) and applies `index`; otherwise stores
   * nothing and reports the conflict with the events stored from `expectedSequence` on.
   * An empty `events` at the right sequence succeeds and stores nothing.
   */
  append(request: AppendRequest): Promise<AppendResult>;

  /** Stored events with sequence ≥ `fromSequence`, in order; `[]` for an unknown aggregate. */
  loadEvents(id: AggregateId, fromSequence: number): Promise<EventRecord[]>;

  /** The latest snapshot (if any) and the events stored after it, in one consistent read. */
  loadSnapshot(id: AggregateId): Promise<SnapshotRecord>;

  /**
   * Stores a snapshot covering events below `sequence`, only if newer than the stored one; an
   * older or equal one is ignored. With `trim`, deletes the stored events below `sequence`.
   * Rejects with `InvalidSequenceError` when `sequence` is beyond the aggregate's next sequence.
   */
  saveSnapshot(id: AggregateId, data: string, sequence: number, trim: boolean): Promise<void>;

  /** IDs whose parts start with `prefix` (all for `[]`), including snapshot-only aggregates. */
  listAggregates(prefix: AggregateId): Promise<AggregateId[]>;

  /** The aggregate's current status, `""` when none. */
  getAggregateStatus(id: AggregateId): Promise<string>;
  /** Aggregates currently in `status`, oldest entry first; `timestamp` is epoch ms. */
  listAggregatesByStatus(status: string): Promise<{ id: AggregateId; timestamp: number }[]>;
  /** Aggregates currently holding `label` = `value`. */
  listAggregatesByLabel(label: string, value: string): Promise<AggregateId[]>;
  /** Distinct values of `label` currently held, sorted by code unit. */
  listLabelValues(label: string): Promise<string[]>;

  /** Moves snapshot and events into archive storage and clears live records and index. */
  archive?(id: AggregateId): Promise<void>;
  /**
   * Waits for one archive record, calls `handler`, and removes the record only after the handler
   * resolves. A throwing handler leaves it for redelivery. Rejects with the abort reason if
   * `signal` aborts before a record is taken.
   */
  consumeArchive?(handler: (record: ArchiveRecordData) => Promise<void>, signal: AbortSignal | undefined): Promise<void>;

  /**
   * Optional: a live feed of the events appended to this store's data by any process (any store
   * over the same data). Resolves once every append that commits afterwards will reach `sink`.
   * Events reach the sink only after their append is durable, in sequence order per aggregate,
   * and the call to the sink must not wait for anything (core queues and delivers). When the
   * backend cannot know whether it missed appends (a dropped connection, a retention window
   * passed), it calls `sink.gap` instead of staying silent. Core opens at most one feed per store.
   */
  watch?(sink: FeedSink): Promise<Feed>;
}

/** Where a backend's feed hands appended events. */
export interface FeedSink {
  /** Events one append stored, in sequence order. */
  events(id: AggregateId, records: readonly EventRecord[]): void;
  /** The feed may have missed appends; `reason` says what happened, in words for a log. */
  gap(reason: string): void;
}

/** An open feed. */
export interface Feed {
  /** Stops the feed and releases what it holds (connections, listeners). */
  close(): Promise<void>;
}

export interface BackendCapabilities {
  /** Supports `archive` and `consumeArchive`. */
  readonly archive: boolean;
}

export interface AppendRequest {
  readonly id: AggregateId;
  readonly expectedSequence: number;
  readonly events: readonly EventRecord[];
  /** The batch's folded index change; absent when the indexer said nothing. */
  readonly index?: IndexUpdate | undefined;
}

export type AppendResult =
  | { readonly ok: true }
  | {
      readonly ok: false;
      /** The aggregate's actual next sequence. */
      readonly actualSequence: number;
      /** Events stored from the expected sequence on (those still stored, if trimmed). */
      readonly newEvents: EventRecord[];
    };

export interface SnapshotRecord {
  /** The snapshot's JSON text, absent when there is none. */
  readonly data?: string | undefined;
  /** The sequence the snapshot covers (events below it); 0 without a snapshot. */
  readonly sequence: number;
  /** Stored events from `sequence` on. */
  readonly events: EventRecord[];
}

/** An archived aggregate as a backend hands it to core. */
export interface ArchiveRecordData {
  /** Backend-specific record ID (a stream entry ID, a row ID). */
  readonly streamId: string;
  readonly aggregateId: AggregateId;
  readonly snapshotData?: string | undefined;
  readonly snapshotSequence: number;
  readonly events: EventRecord[];
}
