/**
 * The replicated state machine of the raft backend, materialized in LMDB.
 *
 * LMDB layout: one database (`data.mdb` in the state folder), binary keys compared as bytes, whose
 * first byte names the table (see `keys.ts` for how integers, times and strings are made to sort):
 *
 * | table | key | value |
 * | --- | --- | --- |
 * | meta | 0x01, field | applied index, next aggregate number, next archive record ID, next log position, log ID |
 * | aggregate head | 0x02, `encodeAggregateId(id)` (UTF-8) | number, next sequence, first stored sequence, snapshot sequence, status, status time, labels |
 * | events | 0x03, aggregate number, sequence | log position, timestamp, type, data |
 * | snapshot | 0x04, aggregate number | snapshot JSON text |
 * | status index | 0x05, status, entry time, aggregate number | encoded ID |
 * | label index | 0x06, label, value, aggregate number | encoded ID |
 * | archive record | 0x07, record ID | encoded ID, snapshot, snapshot sequence, events |
 * | archive lease | 0x08, record ID | leased-until (proposer clock), lease number, holder |
 * | applied proposals | 0x09, bucket number (ordinal ÷ 64) | (ordinal, proposal ID, encoded result) of each proposal recorded in the bucket |
 * | log | 0x0a, position | aggregate number, sequence |
 * | aggregate IDs | 0x0b, aggregate number | encoded ID |
 * | lives | 0x0c, `encodeAggregateId(id)` (UTF-8) | where the ID's next life starts (its last life was archived) |
 * | projections | 0x0d, name (UTF-8) | generation, lease (until, holder), checkpoint, last error |
 *
 * A range read over [0x03, n] gives an aggregate's events in sequence order; over [0x02, prefix] the
 * aggregates a prefix lists; over [0x05, status] a status's members oldest entry first; over [0x0a]
 * the store's log in position order (an event value also holds its position). A proposal
 * ID is remembered while fewer than `proposalWindow` later proposals were applied, then dropped (by
 * the same rule on every node, so all agree on whether a late duplicate is applied; see
 * `proposal-table.ts`).
 */
import { mkdirSync } from 'node:fs';
import { open, type RootDatabase } from 'lmdb';
import {
  type AggregateId,
  type ArchiveRecordData,
  ConfigError,
  decodeAggregateId,
  encodeAggregateId,
  hasIdPrefix,
  InvalidCursorError,
  type ListPage,
  type ListRequest,
  type LogEntry,
  type ProjectionRecord,
  requirePositiveInteger,
  type SnapshotRecord,
  type StatusListEntry,
  StoreClosedError,
  type StoredEventRecord,
} from '@timebox/core';
import type { CommittedEntry, StateImage, StateMachine } from '../node/ports.js';
import { RaftProtocolError } from '../consensus/errors.js';
import { DecodeError, StateLayoutError } from './errors.js';
import { CommandApplier, type ApplyEffects, type PublishedEvent, type WriteView } from './command-applier.js';
import { decodeCommand, type CommandResult } from './commands.js';
import {
  aggregateIdKey,
  aggregateKey,
  archiveKey,
  eventKey,
  eventsEnd,
  KeyBuilder,
  KeyReader,
  LAYOUT_VERSION,
  lifeKey,
  MAX_KEY_BYTES,
  logKey,
  Meta,
  metaKey,
  prefixEnd,
  projectionKey,
  snapshotKey,
  Table,
} from './keys.js';
import { DEFAULT_EXPORT_CHUNKING, ImageExport } from './image-export.js';
import { checkImage, DEFAULT_RESTORE_CHUNKING, restoreImage, type RestoreChunking } from './image-restore.js';
import { commandLimitProblem, labelProblem } from './limits.js';
import { ProposalTable } from './proposal-table.js';
import {
  decodeArchiveRecord,
  decodeEvent,
  decodeHead,
  decodeLogEntry,
  decodeProjection,
  decodeText,
  asBuffer,
  decodeU64,
  encodeU64,
  projectionView,
  type AggregateHead,
} from './records.js';

export type { PublishedEvent } from './command-applier.js';

/** Options of `MaterializedState.exportImage`. */
export interface ExportImageOptions {
  /** Stops the export between two of its steps; it rejects with the signal's reason. */
  readonly signal?: AbortSignal | undefined;
  /** The most (key, value) pairs one synchronous step reads (each step also stops after a few milliseconds). */
  readonly chunkPairs?: number | undefined;
}

/** Options of `MaterializedState.open`. */
export interface MaterializedStateOptions {
  /**
   * Called after each applied batch is durable with the events of each successful append, one call
   * per append, in log order (the member's `publisher` option). A throwing publisher never affects the state.
   */
  readonly publisher?: ((events: PublishedEvent[]) => void) | undefined;
  /** Receives what a publisher threw. Default: `process.emitWarning`. */
  readonly onPublisherError?: ((error: unknown) => void) | undefined;
  /**
   * A proposal ID is remembered while fewer than this many later proposals were applied, so a
   * duplicate of it within that distance is answered with the first result instead of applied again. It
   * decides results, so every node of a cluster must use the same value. Default 100000.
   */
  readonly proposalWindow?: number | undefined;
  /**
   * How many aggregate heads the apply step keeps decoded in memory (each append reads and
   * rewrites its aggregate's head). Default 10000.
   */
  readonly headCacheSize?: number | undefined;
  /** How a restore divides its work into synchronous steps (tests make them tiny). */
  readonly restoreChunking?: RestoreChunking | undefined;
}

const DEFAULT_PROPOSAL_WINDOW = 100_000;
const DEFAULT_HEAD_CACHE_SIZE = 10_000;

/** The LMDB-backed replicated state: applies committed commands, answers the backend's reads. */
export class MaterializedState implements StateMachine<CommandResult> {
  readonly #db: RootDatabase<Buffer, Buffer>;
  readonly #publisher: ((events: PublishedEvent[]) => void) | undefined;
  readonly #onPublisherError: (error: unknown) => void;
  readonly #proposals: ProposalTable;
  readonly #applier: CommandApplier;
  /** Reads and writes inside the current write transaction. */
  readonly #view: WriteView;
  readonly #archiveListeners = new Set<() => void>();
  readonly #appendListeners = new Set<(events: PublishedEvent[]) => void>();
  readonly #restoreListeners = new Set<() => void>();
  #appliedIndex: number;
  /** The last index whose results were handed out early (`apply`'s `onDecided`); ≥ the applied index. */
  #decidedIndex: number;
  /** Reads waiting for the commit of a batch whose results were handed out early. */
  #commitWaiters: { index: number; resolve: () => void; reject: (error: unknown) => void }[] = [];
  /** Serializes apply, restore and close: one write at a time, in call order. */
  #writes: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** Exports in progress: each holds a read transaction until it ends. */
  readonly #exports = new Set<ImageExport>();
  readonly #restoreChunking: RestoreChunking;

  private constructor(db: RootDatabase<Buffer, Buffer>, options: MaterializedStateOptions) {
    this.#db = db;
    this.#publisher = options.publisher;
    this.#onPublisherError = options.onPublisherError ?? ((error) => process.emitWarning(`raft state publisher threw: ${String(error)}`));
    this.#proposals = new ProposalTable(db, options.proposalWindow ?? DEFAULT_PROPOSAL_WINDOW);
    this.#view = writeView(db);
    this.#applier = new CommandApplier(this.#view, options.headCacheSize ?? DEFAULT_HEAD_CACHE_SIZE);
    this.#restoreChunking = options.restoreChunking ?? DEFAULT_RESTORE_CHUNKING;
    const applied = db.get(metaKey(Meta.appliedIndex));
    this.#appliedIndex = applied === undefined ? 0 : decodeU64(applied);
    this.#decidedIndex = this.#appliedIndex;
  }

  /**
   * Opens (creating if needed) the state in folder `dir`. Commits are durable when they resolve:
   * `overlappingSync` is off so LMDB fsyncs inside the commit, and `noSync` is never set.
   */
  static open(dir: string, options: MaterializedStateOptions = {}): MaterializedState {
    if (options.proposalWindow !== undefined) requirePositiveInteger('proposalWindow', options.proposalWindow);
    if (options.headCacheSize !== undefined) requirePositiveInteger('headCacheSize', options.headCacheSize);
    if (options.publisher !== undefined && typeof options.publisher !== 'function')
      throw new ConfigError('publisher', 'must be a function', options.publisher);
    if (typeof dir !== 'string' || dir === '') throw new ConfigError('dir', 'must be a non-empty path', dir);
    mkdirSync(dir, { recursive: true });
    const db = open<Buffer, Buffer>({
      path: dir,
      noSubdir: false,
      keyEncoding: 'binary',
      encoding: 'binary',
      overlappingSync: false,
      noSync: false,
      cache: false,
      compression: false,
    });
    try {
      checkLayout(db, dir);
    } catch (error) {
      void db.close();
      throw error;
    }
    return new MaterializedState(db, options);
  }

  appliedIndex(): number {
    return this.#appliedIndex;
  }

  /**
   * True while a publisher or a live feed takes the events applied here. (An archive consumer
   * does not count: a few milliseconds more before it sees a record make no difference to it.)
   */
  wantsPromptApply(): boolean {
    return this.#publisher !== undefined || this.#appendListeners.size > 0;
  }

  /**
   * Applies committed entries in one durable LMDB transaction (entries at or below the applied
   * index are skipped: a replay after restart) and resolves with the result of each command entry
   * by proposal ID. A duplicate proposal ID gets the result of its first application. An entry
   * whose bytes are not a command gets an `invalid-command` result and changes nothing.
   *
   * `onDecided` gets the same results as soon as the batch's changes are made, before its commit
   * is durable, so the proposals can be answered meanwhile; `whenCommitted` then holds reads back
   * until the commit, so no read answers without a write that was already answered.
   */
  apply(
    entries: readonly CommittedEntry[],
    onDecided?: (results: ReadonlyMap<string, CommandResult>) => void,
  ): Promise<ReadonlyMap<string, CommandResult>> {
    return this.#serialize(() => this.#apply(entries, onDecided));
  }

  /**
   * Resolves once every batch whose results were handed out (through `apply`'s `onDecided`) is
   * committed, so a read that starts after it sees every write already answered. Resolves at once
   * when no such batch is pending. Rejects if that commit fails.
   */
  whenCommitted(): Promise<void> {
    if (this.#decidedIndex <= this.#appliedIndex) return Promise.resolve();
    const index = this.#decidedIndex;
    return new Promise((resolve, reject) => this.#commitWaiters.push({ index, resolve, reject }));
  }

  async #apply(
    entries: readonly CommittedEntry[],
    onDecided?: (results: ReadonlyMap<string, CommandResult>) => void,
  ): Promise<ReadonlyMap<string, CommandResult>> {
    this.#assertOpen('apply entries');
    const results = new Map<string, CommandResult>();
    const fresh: CommittedEntry[] = [];
    for (const entry of entries) {
      if (entry.index <= this.#appliedIndex) {
        // Already applied: answer from the proposal table while it still remembers the ID.
        if (entry.proposalId !== null) {
          const stored = this.#proposals.resultOf(entry.proposalId);
          if (stored !== undefined) results.set(entry.proposalId, stored);
        }
        continue;
      }
      const previous = fresh.at(-1)?.index;
      // The proposals of one envelope entry share its index.
      const expected = (previous ?? this.#appliedIndex) + 1;
      if (entry.index !== expected && entry.index !== previous)
        throw new RaftProtocolError(`state machine expected log index ${expected}, got ${entry.index}`);
      fresh.push(entry);
    }
    if (fresh.length === 0) return results;

    const effects: ApplyEffects = { published: [], archiveAvailable: false };
    const lastIndex = (fresh.at(-1) as CommittedEntry).index;
    const publish = this.#publisher !== undefined || this.#appendListeners.size > 0;
    const applier = this.#applier;
    const proposals = this.#proposals;
    try {
      // A child transaction is aborted whole if anything throws, so a batch is all or nothing.
      await this.#db.childTransaction(() => {
        applier.begin(effects, publish);
        for (const entry of fresh) {
          if (entry.kind !== 'command') continue;
          const id = entry.proposalId;
          if (id !== null) {
            const seen = proposals.remembered(id);
            if (seen !== undefined) {
              results.set(id, seen);
              continue;
            }
          }
          const result = applyOne(applier, entry.data);
          if (id !== null) {
            proposals.record(id, result);
            results.set(id, result);
          }
        }
        applier.finish();
        proposals.flush(this.#view);
        // Inside a transaction LMDB writes at once; the returned promise only reports the commit,
        // which awaiting the transaction covers (as in writeView).
        void this.#db.put(metaKey(Meta.appliedIndex), asBuffer(encodeU64(lastIndex)));
        if (onDecided !== undefined) {
          // Nothing in the batch can fail any more: only its commit, which fails the node.
          this.#decidedIndex = lastIndex;
          queueMicrotask(() => onDecided(results));
        }
      });
    } catch (error) {
      // What the applier and the proposal table hold in memory followed the aborted transaction.
      applier.forgetCache();
      proposals.reload();
      this.#decidedIndex = this.#appliedIndex;
      this.#releaseCommitWaiters(error);
      throw error;
    }
    this.#appliedIndex = lastIndex;
    this.#releaseCommitWaiters();
    this.#afterCommit(effects);
    return results;
  }

  #releaseCommitWaiters(error?: unknown): void {
    if (this.#commitWaiters.length === 0) return;
    const waiting = this.#commitWaiters;
    this.#commitWaiters = [];
    for (const waiter of waiting) {
      if (error !== undefined) waiter.reject(error);
      else if (waiter.index <= this.#appliedIndex) waiter.resolve();
      else this.#commitWaiters.push(waiter);
    }
  }

  #afterCommit(effects: ApplyEffects): void {
    const listeners = this.#publisher === undefined ? [...this.#appendListeners] : [this.#publisher, ...this.#appendListeners];
    if (listeners.length > 0) {
      for (const events of effects.published) {
        for (const listener of listeners) {
          try {
            listener(events);
          } catch (error) {
            this.#onPublisherError(error);
          }
        }
      }
    }
    if (effects.archiveAvailable) this.#notifyArchive();
  }

  /**
   * Like the `publisher` option, for listeners that come and go (a backend's live feed): called
   * after each durable batch with the events of each successful append, in log order. Returns the
   * unsubscribe function.
   */
  onAppended(listener: (events: PublishedEvent[]) => void): () => void {
    this.#appendListeners.add(listener);
    return () => this.#appendListeners.delete(listener);
  }

  /**
   * Called after `restoreSnapshot` replaced the state: the appends the image covered were never
   * seen one by one, so a feed has a gap. Returns the unsubscribe function.
   */
  onRestored(listener: () => void): () => void {
    this.#restoreListeners.add(listener);
    return () => this.#restoreListeners.delete(listener);
  }

  /**
   * Calls `listener` after a batch that added or freed an archive record is durable on this node
   * (and after a restore), so waiting consumers look again. Returns the unsubscribe function.
   */
  onArchiveAvailable(listener: () => void): () => void {
    this.#archiveListeners.add(listener);
    return () => this.#archiveListeners.delete(listener);
  }

  #notifyArchive(): void {
    for (const listener of [...this.#archiveListeners]) listener();
  }

  // ---- reads: each runs synchronously in one read transaction, so it sees one committed state ----

  #read<T>(
    operation: string,
    read: (
      get: (key: Buffer) => Buffer | undefined,
      range: (start: Buffer, end: Buffer, limit?: number) => Iterable<{ key: Buffer; value: Buffer }>,
    ) => T,
  ): T {
    this.#assertOpen(operation);
    const transaction = this.#db.useReadTransaction();
    try {
      return read(
        (key) => this.#db.get(key, { transaction }),
        (start, end, limit) => this.#db.getRange({ start, end, limit, transaction }),
      );
    } finally {
      transaction.done();
    }
  }

  /** Stored events with sequence ≥ `fromSequence`, in order. */
  loadEvents(id: AggregateId, fromSequence: number): StoredEventRecord[] {
    return this.#read('load events', (get, range) => {
      const head = readHead(get, id);
      return head === undefined ? [] : readEvents(range, head, fromSequence);
    });
  }

  /** The snapshot and the events stored after it, in one consistent read. */
  loadSnapshot(id: AggregateId): SnapshotRecord {
    return this.#read('load a snapshot', (get, range) => {
      const encodedId = encodeAggregateId(id);
      const stored = get(aggregateKey(encodedId));
      if (stored === undefined) {
        // No live life: an archived ID's next life starts after a gap, and loads start there.
        const life = get(lifeKey(encodedId));
        return { sequence: life === undefined ? 0 : decodeU64(life), events: [] };
      }
      const head = decodeHead(stored);
      // Without a snapshot the first stored sequence is where the life started (only a snapshot trims).
      const sequence = head.snapshotSequence ?? head.firstSequence;
      const snapshot = head.snapshotSequence === null ? undefined : get(snapshotKey(head.number));
      return { data: snapshot === undefined ? undefined : decodeText(snapshot), sequence, events: readEvents(range, head, sequence) };
    });
  }

  // The list queries read one page each: a range of at most limit + 1 keys starting just after
  // the previous page's last key (its continuation, in hex), so a page costs its own size and an
  // entry that stays put is returned once however the keys around it change.

  /** IDs whose parts start with `prefix`, including snapshot-only aggregates, in key order. */
  listAggregates(prefix: AggregateId, request: ListRequest): ListPage<AggregateId> {
    return this.#read('list aggregates', (get, range) => {
      const idOf = (key: Buffer): AggregateId => decodeAggregateId(new KeyReader(key).tail());
      if (prefix.length === 0) {
        const all = Buffer.from([Table.aggregate]);
        return pageOfRange(range, all, prefixEnd(all), request, idOf);
      }
      // The prefix itself, then the keys under `prefix + ':'`: look-alikes such as "order!" sort
      // between them and are never read.
      const exact = aggregateKey(encodeAggregateId(prefix));
      const children = aggregateKey(encodeAggregateId(prefix) + ':');
      // Every key under `children` is below it with its last byte (':') raised: a bound of its own
      // length, so it stays a valid key as long as a child can exist at all.
      const childrenEnd = prefixEnd(children);
      const after = request.after === undefined ? undefined : continuationKey(request.after, exact, childrenEnd);
      const itself = (after === undefined || Buffer.compare(after, exact) < 0) && get(exact) !== undefined;
      const restAfter = after !== undefined && Buffer.compare(after, children) >= 0 ? request.after : undefined;
      const limit = itself ? request.limit - 1 : request.limit;
      // A prefix of the longest ID length has no children: their keys would be over the limit.
      const noChildren = children.length > MAX_KEY_BYTES;
      const rest = limit === 0 || noChildren ? { items: [] } : pageOfRange(range, children, childrenEnd, { limit, after: restAfter }, idOf);
      if (!itself) return rest;
      const items = [decodeAggregateId(encodeAggregateId(prefix)), ...rest.items];
      if (rest.next !== undefined) return { items, next: rest.next };
      // With a limit of 1 the page holds only the prefix itself; go on from it if anything follows.
      const more = request.limit === 1 && !noChildren && [...range(children, childrenEnd, 1)].length > 0;
      return more ? { items, next: exact.toString('hex') } : { items };
    });
  }

  getAggregateStatus(id: AggregateId): string {
    return this.#read('read a status', (get) => readHead(get, id)?.status ?? '');
  }

  /** Aggregates in `status`, oldest entry first (ties by the aggregate's internal number). */
  listAggregatesByStatus(status: string, request: ListRequest): ListPage<StatusListEntry> {
    return this.#read('list aggregates by status', (_get, range) => {
      const start = new KeyBuilder(Table.status).str(status).build();
      return pageOfRange(range, start, prefixEnd(start), request, (key, value) => {
        const reader = new KeyReader(key);
        reader.str();
        return { id: decodeAggregateId(decodeText(value)), timestamp: reader.time() };
      });
    });
  }

  /** Aggregates holding `label` = `value`, by their internal numbers. */
  listAggregatesByLabel(label: string, value: string, request: ListRequest): ListPage<AggregateId> {
    return this.#read('list aggregates by label', (_get, range) => {
      const start = new KeyBuilder(Table.label).str(label).str(value).build();
      return pageOfRange(range, start, prefixEnd(start), request, (_key, stored) => decodeAggregateId(decodeText(stored)));
    });
  }

  /**
   * Distinct values of `label` in UTF-8 byte (code point) order: one seek per value, past all of
   * its holders, so the cost is the values', not the aggregates'.
   */
  listLabelValues(label: string, request: ListRequest): ListPage<string> {
    return this.#read('list label values', (_get, range) => {
      const start = new KeyBuilder(Table.label).str(label).build();
      const end = prefixEnd(start);
      const values: string[] = [];
      let from = request.after === undefined ? start : valueEnd(label, decodeValueCursor(label, request.after));
      while (values.length <= request.limit) {
        const first = [...range(from, end, 1)][0];
        if (first === undefined) break;
        const reader = new KeyReader(first.key);
        reader.str();
        const value = reader.str();
        values.push(value);
        from = valueEnd(label, value);
      }
      if (values.length <= request.limit) return { items: values };
      const items = values.slice(0, request.limit);
      return { items, next: Buffer.from(items[items.length - 1] as string, 'utf8').toString('hex') };
    });
  }

  /**
   * One step of a log read: the entries after position `after`, in position order, until `limit`
   * of them matched `filter`, `maxScan` log entries were looked at, or the events read reached
   * `maxBytes` of data, whichever comes first. `after` in the answer is the last position looked
   * at, `scanned` how many entries that was; `end` is true when no log entry lay beyond it. One
   * read transaction.
   */
  readLog(
    after: number,
    limit: number,
    maxScan: number,
    maxBytes: number,
    filter: { readonly types?: ReadonlySet<string> | undefined; readonly prefix?: AggregateId | undefined } = {},
  ): { entries: LogEntry[]; after: number; scanned: number; end: boolean } {
    return this.#read('read the log', (get, range) => {
      const entries: LogEntry[] = [];
      const ids = new Map<number, { encoded: string; id: AggregateId | undefined }>();
      let last = after;
      let scanned = 0;
      let bytes = 0;
      let full = false;
      for (const { key, value } of range(logKey(after + 1), Buffer.from([Table.log + 1]))) {
        // One entry past a full page only tells that the log goes on.
        if (full) return { entries, after: last, scanned, end: false };
        const position = new KeyReader(key).u64();
        const { aggregate, sequence } = decodeLogEntry(value);
        let known = ids.get(aggregate);
        if (known === undefined) {
          const encoded = get(aggregateIdKey(aggregate));
          if (encoded === undefined) throw new RaftProtocolError(`raft state: log position ${position} names a missing aggregate`);
          known = { encoded: decodeText(encoded), id: undefined };
          ids.set(aggregate, known);
        }
        last = position;
        scanned++;
        if (filter.prefix === undefined || hasIdPrefix(known.encoded, filter.prefix)) {
          const stored = get(eventKey(aggregate, sequence));
          if (stored === undefined) throw new RaftProtocolError(`raft state: log position ${position} names a missing event`);
          bytes += stored.length;
          const event = decodeEvent(sequence, stored);
          if (filter.types === undefined || filter.types.has(event.type)) {
            known.id ??= decodeAggregateId(known.encoded);
            entries.push({ id: [...known.id], event });
          }
        }
        full = entries.length >= limit || scanned >= maxScan || bytes >= maxBytes;
      }
      return { entries, after: last, scanned, end: true };
    });
  }

  /** The position of the newest event ever appended (0 when none): the log's head. */
  logHead(): number {
    return this.#read('read the log head', (get) => {
      const stored = get(metaKey(Meta.nextPosition));
      return stored === undefined ? 0 : decodeU64(stored) - 1;
    });
  }

  /** The log's identity, set by the first applied `open-log` command; undefined before it. */
  logId(): string | undefined {
    return this.#read('read the log ID', (get) => {
      const stored = get(metaKey(Meta.logId));
      return stored === undefined ? undefined : decodeText(stored);
    });
  }

  /** A projection's record as it stands, judging its lease by `now` (this member's clock). */
  loadProjection(name: string, now: number): ProjectionRecord | undefined {
    return this.#read('read a projection', (get) => {
      const stored = get(projectionKey(name));
      return stored === undefined ? undefined : projectionView(name, decodeProjection(stored), now);
    });
  }

  /** An archive record by ID, or undefined once acknowledged. */
  readArchiveRecord(record: number): ArchiveRecordData | undefined {
    return this.#read('read an archive record', (get) => {
      const stored = get(archiveKey(record));
      return stored === undefined ? undefined : decodeArchiveRecord(record, stored);
    });
  }

  /** How many archive records wait for acknowledgement. */
  archiveSize(): number {
    return this.#read(
      'count archive records',
      (_get, range) => [...range(Buffer.from([Table.archive]), Buffer.from([Table.archive + 1]))].length,
    );
  }

  // ---- snapshot image ----

  /**
   * A consistent image of the whole state, including the applied index and the proposal table:
   * "TBS\x03" (the layout version), then every (key, value) pair in key order, each length-prefixed. Equal states give
   * equal bytes. The bytes of `exportImage`.
   */
  async exportSnapshot(): Promise<Uint8Array> {
    return (await this.exportImage()).data;
  }

  /**
   * The snapshot image and the applied index it is the state at. Read a few milliseconds at a time
   * with the event loop free in between, in one LMDB read transaction: batches applied meanwhile
   * are not in it, so `index` may be below `appliedIndex()` by the time it resolves. Rejects with
   * `StoreClosedError` when the state closes first (the read transaction is released either way),
   * and with the signal's reason when `options.signal` aborts.
   */
  async exportImage(options: ExportImageOptions = {}): Promise<StateImage> {
    // A restore in progress has written part of its image (its index is above the applied one
    // until it is whole): export the whole state after it.
    await this.whenCommitted();
    this.#assertOpen('export a snapshot');
    if (options.chunkPairs !== undefined) requirePositiveInteger('chunkPairs', options.chunkPairs);
    const chunking =
      options.chunkPairs === undefined ? DEFAULT_EXPORT_CHUNKING : { ...DEFAULT_EXPORT_CHUNKING, maxPairs: options.chunkPairs };
    const exporting = new ImageExport(this.#db, chunking);
    this.#exports.add(exporting);
    try {
      return await exporting.run(options.signal);
    } finally {
      this.#exports.delete(exporting);
    }
  }

  /**
   * Replaces the whole state with `image` (from `exportImage`) taken at log index `index`. The
   * image is checked whole first (a corrupt one is refused with `RaftProtocolError`, the state
   * untouched), then written a few milliseconds at a time (see `image-restore.ts`, which also says
   * why a crash midway is safe). Reads wait meanwhile (`whenCommitted`, and exports): they see the
   * state before or after, never part of the image.
   */
  restoreSnapshot(data: Uint8Array, index: number): Promise<void> {
    return this.#serialize(async () => {
      this.#assertOpen('restore a snapshot');
      if (!Number.isSafeInteger(index) || index < 0) throw new RaftProtocolError(`snapshot index must be an integer ≥ 0, got ${index}`);
      await checkImage(data, this.#restoreChunking);
      // Above the applied index: every read's `whenCommitted` waits until the restore is whole.
      this.#decidedIndex = Math.max(this.#decidedIndex, index);
      try {
        await restoreImage(this.#db, data, index, this.#restoreChunking);
        // What the applier and the proposal table hold is the old state's.
        this.#applier.forgetCache();
        await this.#proposals.reloadInSteps(this.#restoreChunking.budgetMs);
      } catch (error) {
        // The database holds part of the image and no applied index: this member must restart,
        // and restores the snapshot again when it does.
        this.#applier.forgetCache();
        this.#proposals.reload();
        this.#appliedIndex = this.#decidedIndex = 0;
        this.#releaseCommitWaiters(error);
        throw error;
      }
      this.#appliedIndex = index;
      this.#decidedIndex = index;
      this.#releaseCommitWaiters();
      for (const listener of [...this.#restoreListeners]) listener();
      this.#notifyArchive();
    });
  }

  /** Waits for a running apply or restore, then closes LMDB. Idempotent. */
  close(): Promise<void> {
    if (this.#closed) return this.#writes.then(() => undefined);
    const closing = this.#serialize(async () => {
      this.#closed = true;
      // LMDB closes only once its read transactions are released.
      for (const exporting of this.#exports) exporting.cancel(new StoreClosedError('export a snapshot'));
      this.#exports.clear();
      this.#archiveListeners.clear();
      this.#appendListeners.clear();
      this.#restoreListeners.clear();
      await this.#db.close();
    });
    return closing;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #serialize<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#writes.then(work, work);
    this.#writes = run.catch(() => undefined);
    return run;
  }

  #assertOpen(operation: string): void {
    if (this.#closed) throw new StoreClosedError(operation);
  }
}

/**
 * The applier's access to LMDB inside a write transaction. Values may be views of a reused
 * buffer: inside a transaction LMDB copies a value as it is put.
 */
function writeView(db: RootDatabase<Buffer, Buffer>): WriteView {
  return {
    get: (key) => db.get(key),
    put: (key, value) => void db.put(key, value as Buffer),
    remove: (key) => void db.remove(key),
    range: (start, end) => db.getRange({ start, end }),
    last: (start, end) => {
      // Backwards from `end`, which is itself included when it exists: skip it.
      for (const key of db.getKeys({ start: end, reverse: true, limit: 2 })) {
        if (Buffer.compare(key, end) >= 0) continue;
        return Buffer.compare(key, start) >= 0 ? key : undefined;
      }
      return undefined;
    },
  };
}

/**
 * Refuses a folder written with another layout (its keys would be misread); stamps a new, empty
 * one with this layout. A folder from before layouts were stamped holds data but no stamp.
 */
function checkLayout(db: RootDatabase<Buffer, Buffer>, dir: string): void {
  const stamp = db.get(metaKey(Meta.layoutVersion));
  if (stamp !== undefined) {
    const version = decodeU64(stamp);
    if (version === LAYOUT_VERSION) return;
    throw new StateLayoutError(dir, `layout version ${version}`);
  }
  const empty = db.getKeysCount({ start: Buffer.from([0]), end: Buffer.from([0xff]) }) === 0;
  if (!empty) throw new StateLayoutError(dir, 'layout version 1 (no stamp)');
  db.putSync(metaKey(Meta.layoutVersion), asBuffer(encodeU64(LAYOUT_VERSION)));
}

function applyOne(applier: CommandApplier, data: Uint8Array): CommandResult {
  let command;
  try {
    command = decodeCommand(data);
  } catch (error) {
    if (error instanceof DecodeError) return { type: 'invalid-command', reason: `undecodable command: ${error.message}` };
    throw error;
  }
  const problem = commandLimitProblem(command);
  if (problem !== undefined) return { type: 'invalid-command', reason: `${problem.field} ${problem.rule}` };
  switch (command.type) {
    case 'append':
      return applier.append(command);
    case 'save-snapshot':
      return applier.saveSnapshot(command);
    case 'archive':
      return applier.archive(command);
    case 'lease':
      return applier.lease(command);
    case 'renew':
      return applier.renew(command);
    case 'ack':
      return applier.ack(command);
    case 'release':
      return applier.release(command);
    case 'open-log':
      return applier.openLog(command);
    case 'claim-projection':
      return applier.claimProjection(command);
    case 'save-projection':
      return applier.saveProjection(command);
    case 'release-projection':
      return applier.releaseProjection(command);
    case 'reset-projection':
      return applier.resetProjection(command);
  }
}

function readHead(get: (key: Buffer) => Buffer | undefined, id: AggregateId): AggregateHead | undefined {
  const stored = get(aggregateKey(encodeAggregateId(id)));
  return stored === undefined ? undefined : decodeHead(stored);
}

function readEvents(
  range: (start: Buffer, end: Buffer) => Iterable<{ key: Buffer; value: Buffer }>,
  head: AggregateHead,
  fromSequence: number,
): StoredEventRecord[] {
  const start = Math.max(fromSequence, head.firstSequence);
  const events: StoredEventRecord[] = [];
  for (const { key, value } of range(eventKey(head.number, start), eventsEnd(head.number))) {
    events.push(decodeEvent(new KeyReader(key).skip(8).u64(), value));
  }
  return events;
}

/** The first key after every holder of `label` = `value`. */
function valueEnd(label: string, value: string): Buffer {
  return prefixEnd(new KeyBuilder(Table.label).str(label).str(value).build());
}

function decodeValueCursor(label: string, after: string): string {
  const value = /^(?:[0-9a-f]{2})*$/.test(after) ? Buffer.from(after, 'hex').toString('utf8') : undefined;
  // A value too long to be stored names no place in the list (and would make an oversized key).
  if (value === undefined || labelProblem(label, value) !== undefined) {
    throw new InvalidCursorError('does not name a place in a list of label values', after);
  }
  return value;
}

/** The key a continuation names, checked to lie in the query's range. */
function continuationKey(after: string, start: Buffer, end: Buffer): Buffer {
  const key = /^(?:[0-9a-f]{2})+$/.test(after) ? Buffer.from(after, 'hex') : undefined;
  // No stored key is longer than the limit, and LMDB refuses to look one up.
  if (key === undefined || key.length > MAX_KEY_BYTES || Buffer.compare(key, start) < 0 || Buffer.compare(key, end) >= 0) {
    throw new InvalidCursorError('does not name a place in this list', after);
  }
  return key;
}

/**
 * One page of the keys in [`start`, `end`) after the continuation: at most `limit` items, reading
 * one key more to know whether another page follows.
 */
function pageOfRange<T>(
  range: (start: Buffer, end: Buffer, limit?: number) => Iterable<{ key: Buffer; value: Buffer }>,
  start: Buffer,
  end: Buffer,
  request: ListRequest,
  item: (key: Buffer, value: Buffer) => T,
): ListPage<T> {
  // Read from the continuation's own key and skip it: the smallest key after it (it followed by a
  // zero byte) would be over the key limit when it is of the longest length.
  const after = request.after === undefined ? undefined : continuationKey(request.after, start, end);
  const items: T[] = [];
  let last: Buffer | undefined;
  for (const { key, value } of range(after ?? start, end, request.limit + 2)) {
    if (after !== undefined && items.length === 0 && key.equals(after)) continue;
    if (items.length === request.limit) return { items, next: (last as Buffer).toString('hex') };
    items.push(item(key, value));
    last = key;
  }
  return { items };
}
