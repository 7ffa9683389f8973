import type { AggregateId } from './id.js';
import type { EventRecord, StoredEventRecord } from './event.js';
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
  /**
   * The store's log: an identity for checkpoints and the number of partitions. `id` names this
   * store's data (e.g. `"redis:{prefix}"`) so a checkpoint from another store is refused; it must
   * be the same for every backend opened over the same data.
   */
  readonly log?: LogDescriptor;

  /** Resolves once the backend can serve requests. */
  ready(): Promise<void>;
  /** Releases connections and resources. Called once. */
  close(): Promise<void>;

  /**
   * Atomically: if the aggregate's next sequence equals `expectedSequence`, stores `events`
   * (their sequences already run from `expectedSequence`), gives each a position in the log
   * partition of the aggregate, and applies `index`; otherwise stores nothing and reports the
   * conflict with the events stored from `expectedSequence` on. An empty `events` at the right
   * sequence succeeds and stores nothing.
   *
   * One life per ID: after `archive(id)`, the ID's next sequence is the archived life's next
   * sequence plus one (the boundary leaves a gap), so an append expecting a sequence read in an
   * earlier life is a conflict and a catch-up from an old life's sequence finds a gap.
   */
  append(request: AppendRequest): Promise<AppendResult>;

  /** Stored events with sequence ≥ `fromSequence`, in order; `[]` for an unknown aggregate. */
  loadEvents(id: AggregateId, fromSequence: number): Promise<StoredEventRecord[]>;

  /**
   * The latest snapshot (if any) and the events stored after it, in one consistent read. For an ID
   * whose earlier life was archived and that has no snapshot in its current life, `sequence` is
   * where the current life starts (no `data`), so a load starts from the empty state there.
   */
  loadSnapshot(id: AggregateId): Promise<SnapshotRecord>;

  /**
   * Stores a snapshot covering events below `sequence`, only if newer than the stored one; an
   * older or equal one is ignored, and so is one at or below the start of the ID's current life.
   * With `trim`, deletes the stored events below `sequence`. Rejects with `InvalidSequenceError`
   * when `sequence` is beyond the aggregate's next sequence.
   */
  saveSnapshot(id: AggregateId, data: string, sequence: number, trim: boolean): Promise<void>;

  /**
   * A page of the store's log: up to `limit` events (matching `types` and `prefix` when given)
   * with positions after `after`, in log order, and the positions the page read up to. A backend
   * may scan past non-matching events and return fewer than `limit` without reaching the end; it
   * sets `end` only when nothing readable lay beyond what it read (for
   * PostgreSQL: nothing settled yet). Events removed by trimming or
   * archiving are not in the log. A reader that has read a partition up to position p must never
   * later find an event at or below p that it did not see: a backend whose positions can commit
   * out of order (PostgreSQL) returns only the prefix of the log that is settled.
   */
  readLog?(request: ReadLogRequest): Promise<LogPage>;

  /**
   * The position of the newest settled event in each partition (0 for an empty one): everything
   * at or below it is committed, so a reader starting there misses nothing appended afterwards.
   */
  logHead?(): Promise<number[]>;

  /** The durable state of named projections (checkpoint, lease, last error). */
  readonly projections?: ProjectionStore;

  // The list queries are paged: each returns at most `request.limit` items after the
  // continuation `request.after` (from the start when absent), in an order of the backend's
  // index that does not change while items stay put, and `next` to continue from. Keyset pages
  // (continue after the last key returned), so that an item which stays in the list while it is
  // paged is returned exactly once, whatever else is added or removed meanwhile. A backend
  // reads only what the page needs from its indexes (no scan of the whole list per page).
  // `after` is a `next` this backend returned for the same query (core checks the store and
  // query); for text it cannot parse it throws `InvalidCursorError`.

  /**
   * IDs whose parts start with `prefix` (all for `[]`), including snapshot-only aggregates, in
   * the order of their encoded keys (`encodeAggregateId`).
   */
  listAggregates(prefix: AggregateId, request: ListRequest): Promise<ListPage<AggregateId>>;

  /** The aggregate's current status, `""` when none. */
  getAggregateStatus(id: AggregateId): Promise<string>;
  /**
   * Aggregates currently in `status`, oldest entry first (ties in encoded-key order); `timestamp`
   * is epoch ms.
   */
  listAggregatesByStatus(status: string, request: ListRequest): Promise<ListPage<StatusListEntry>>;
  /** Aggregates currently holding `label` = `value`, in encoded-key order. */
  listAggregatesByLabel(label: string, value: string, request: ListRequest): Promise<ListPage<AggregateId>>;
  /**
   * Distinct values of `label` currently held, in the index's order (code units or code points:
   * they differ only between astral characters and U+E000..U+FFFF). Costs in proportion to the
   * values returned, not to the aggregates holding them.
   */
  listLabelValues(label: string, request: ListRequest): Promise<ListPage<string>>;

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
  /** Events one append stored, in sequence order, with their positions. */
  events(id: AggregateId, records: readonly StoredEventRecord[]): void;
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
  /**
   * Has the read side: `log`, `readLog`, `logHead` and `projections` (so `readAll`, `project` and
   * `subscribe({ after })` work). Without it those reject with `ReadSideUnavailableError`.
   */
  readonly readSide?: boolean;
}

/** A backend with the read side (`capabilities.readSide`): the log and projection storage. */
export type ReadSideBackend = Backend & Required<Pick<Backend, 'log' | 'readLog' | 'logHead' | 'projections'>>;

/** @internal True when the backend declares the read side and provides all of it. */
export function hasReadSide(backend: Backend): backend is ReadSideBackend {
  return (
    backend.capabilities.readSide === true &&
    backend.log !== undefined &&
    typeof backend.readLog === 'function' &&
    typeof backend.logHead === 'function' &&
    backend.projections !== undefined
  );
}

/** A request for one page of a list query. */
export interface ListRequest {
  /** The most items to return, 1 to 10,000. */
  readonly limit: number;
  /** Continue after this point: a `next` the backend returned for the same query. */
  readonly after?: string | undefined;
}

/** One page of a list query. */
export interface ListPage<T> {
  readonly items: T[];
  /**
   * Where the next page continues (typically the last item's key); absent when no item follows.
   * A backend that cannot tell cheaply may return it with the last full page; the next is empty.
   */
  readonly next?: string | undefined;
}

/** An aggregate in a status list: when it entered the status, epoch ms. */
export interface StatusListEntry {
  readonly id: AggregateId;
  readonly timestamp: number;
}

export interface AppendRequest {
  readonly id: AggregateId;
  readonly expectedSequence: number;
  readonly events: readonly EventRecord[];
  /** The batch's folded index change; absent when the indexer said nothing. */
  readonly index?: IndexUpdate | undefined;
}

export type AppendResult =
  | {
      readonly ok: true;
      /** The log position given to each appended event, in order (empty for an empty batch). */
      readonly positions: readonly number[];
    }
  | {
      readonly ok: false;
      /** The aggregate's actual next sequence. */
      readonly actualSequence: number;
      /** Events stored from the expected sequence on (those still stored, if trimmed). */
      readonly newEvents: StoredEventRecord[];
    };

export interface SnapshotRecord {
  /** The snapshot's JSON text, absent when there is none. */
  readonly data?: string | undefined;
  /**
   * The sequence the snapshot covers (events below it); without a snapshot, where the ID's current
   * life starts (0, or one past an archived life's next sequence).
   */
  readonly sequence: number;
  /** Stored events from `sequence` on. */
  readonly events: StoredEventRecord[];
}

/** What identifies a store's log and how it is partitioned. */
export interface LogDescriptor {
  /** Names this store's data; equal for every backend over the same data, different for others. */
  readonly id: string;
  /** How many partitions the log has (1 unless the store spreads over several Redis slots). */
  readonly partitions: number;
}

export interface ReadLogRequest {
  /** For each partition, the position read up to (0 = from the start). */
  readonly after: readonly number[];
  /** The most events to return, 1 to 10,000. */
  readonly limit: number;
  /** Only events of these types (all when absent). */
  readonly types?: readonly string[] | undefined;
  /** Only events of aggregates whose IDs start with this prefix (all when absent). */
  readonly prefix?: AggregateId | undefined;
}

export interface LogPage {
  /** Events in log order (merged across partitions in an order of the backend's choosing). */
  readonly entries: LogEntry[];
  /** For each partition, the position this page read up to (≥ the request's `after`). */
  readonly after: number[];
  /** True when nothing was stored beyond `after` in any partition when the page was read. */
  readonly end: boolean;
}

export interface LogEntry {
  readonly id: AggregateId;
  readonly event: StoredEventRecord;
}

/**
 * A projection's durable record. `checkpoint` is core's encoded checkpoint text, opaque to the
 * backend, which stores it exactly as given.
 */
export interface ProjectionRecord {
  readonly name: string;
  /** Where the projection has handled the log up to; absent before its first batch. */
  readonly checkpoint?: string | undefined;
  /** Who holds the lease (a runner ID), absent when nobody does or it expired. */
  readonly holder?: string | undefined;
  /** When the holder's lease runs out, epoch ms by the backend's clock; 0 when none. */
  readonly leaseUntil: number;
  /** Bumped by every `reset`, so a running holder notices that its checkpoint was replaced. */
  readonly generation: number;
  /** The last failure the runner reported, cleared by its next successful batch. */
  readonly lastError?: string | undefined;
}

/** The outcome of a conditional projection write: done, or why not. */
export type ProjectionWrite = 'ok' | 'lost-lease' | 'reset';

/**
 * Durable projection state with a lease per name, so that across all processes at most one runner
 * per name is active. Every write is atomic and conditional; expiry is judged by the backend's
 * clock where it has one (the server's), so processes with skewed clocks still agree.
 */
export interface ProjectionStore {
  /** The record, or undefined for a name never used. */
  load(name: string): Promise<ProjectionRecord | undefined>;
  /**
   * Takes or renews the lease for `holder` if it is free, expired, or already `holder`'s, for
   * `leaseMs`. Creates the record when missing. Answers the record after the attempt and whether
   * `holder` now holds it.
   */
  claim(name: string, holder: string, leaseMs: number): Promise<{ readonly held: boolean; readonly record: ProjectionRecord }>;
  /**
   * If `holder` still holds the lease and the record's generation is still `generation`: stores
   * `checkpoint` (when given) and `lastError` (a string sets it, `null` clears it, absent keeps it)
   * and renews the lease for `leaseMs`.
   */
  save(
    name: string,
    holder: string,
    generation: number,
    update: { readonly checkpoint?: string; readonly lastError?: string | null },
    leaseMs: number,
  ): Promise<ProjectionWrite>;
  /**
   * Optional (PostgreSQL): runs `work` with an open transaction and makes `save`'s conditional
   * write in that same transaction, committing both or neither; `work`'s changes are rolled back
   * when the write is not `'ok'`.
   */
  saveWith?(
    name: string,
    holder: string,
    generation: number,
    update: { readonly checkpoint?: string; readonly lastError?: string | null },
    leaseMs: number,
    work: (transaction: unknown) => Promise<void>,
  ): Promise<ProjectionWrite>;
  /** Gives the lease up if `holder` has it. */
  release(name: string, holder: string): Promise<void>;
  /**
   * Replaces the checkpoint (absent: back to the start), clears the last error and bumps the
   * generation, whoever holds the lease. Creates the record when missing.
   */
  reset(name: string, checkpoint: string | undefined): Promise<void>;
}

/** An archived aggregate as a backend hands it to core. */
export interface ArchiveRecordData {
  /** Backend-specific record ID (a stream entry ID, a row ID). */
  readonly streamId: string;
  readonly aggregateId: AggregateId;
  readonly snapshotData?: string | undefined;
  readonly snapshotSequence: number;
  readonly events: StoredEventRecord[];
}
