import { randomUUID } from 'node:crypto';
import {
  InvalidArgumentError,
  InvalidSequenceError,
  requirePositiveInteger,
  StoreClosedError,
  type AggregateId,
  type AppendRequest,
  type AppendResult,
  type ArchiveRecordData,
  type Backend,
  type BackendCapabilities,
  type Feed,
  type FeedSink,
  type ListPage,
  type ListRequest,
  type LogDescriptor,
  type LogEntry,
  type LogPage,
  type ReadLogRequest,
  type SnapshotRecord,
  type StatusListEntry,
  type StoredEventRecord,
} from '@timebox/core';
import type { Replicator } from './node/ports.js';
import { encodeCommand, type Command, type CommandResult } from './state/commands.js';
import {
  aggregateIdProblem,
  commandLimitProblem,
  labelNameProblem,
  labelProblem,
  prefixProblem,
  statusProblem,
  type LimitProblem,
} from './state/limits.js';
import { pageInChunks } from './state/chunked-page.js';
import type { MaterializedState } from './state/materialized-state.js';
import { ArchiveConsumer } from './archive-consumer.js';
import { RaftCommandRejectedError, RaftEntryTooLargeError, RaftLogUnnamedError } from './errors.js';
import { resolveMaxEntryBytes } from './entry-limits.js';
import type { RaftReadMode } from './options.js';
import { ReadFence } from './read-fence.js';
import { RaftProjections } from './projections.js';

/** A replicator that can also wait for a linearizable read point (`RaftServer` can). */
export type ReadBarrierReplicator<Result> = Replicator<Result> & {
  /** Resolves once this node has applied everything committed cluster-wide when it was called. */
  readBarrier?(): Promise<void>;
};

/** How the backend is built, and what it closes. */
export interface RaftBackendOptions {
  /** The local materialized state: reads come from it. */
  readonly state: MaterializedState;
  /** Replicates writes; its state machine must be `state` (applied on this node before a proposal resolves). */
  readonly replicator: ReadBarrierReplicator<CommandResult>;
  /**
   * `'linearizable'` (default) or `'local'`; see {@link RaftReadMode}. A replicator without a
   * `readBarrier` (the single-process `LocalReplicator`) has nothing to wait for: its reads are
   * linearizable as they are.
   */
  readonly reads?: RaftReadMode | undefined;
  /**
   * Whether `close()` closes the replicator and then the state. Default false: the caller owns
   * them (several backends over one node, as several "processes" in tests) and closes them itself,
   * replicator first.
   */
  readonly ownsNode?: boolean | undefined;
  /**
   * How long (ms) an archive record stays with a consumer that stopped renewing (its process died
   * or its backend closed) before another may take it; a running handler renews every third of
   * it. Default 30000.
   */
  readonly archiveLeaseMs?: number | undefined;
  /** Longest wait (ms) of an idle archive consumer before it asks again, a safety net behind wake-ups. Default 5000. */
  readonly archiveRecheckMs?: number | undefined;
  /**
   * The largest log entry (encoded command) this backend proposes; larger writes are refused with
   * `RaftEntryTooLargeError`. The member's `maxEntryBytes`. Default 8 MiB.
   */
  readonly maxEntryBytes?: number | undefined;
}

/** The most events one `readLog` page returns (the contract's limit). */
const MAX_PAGE = 10_000;
/** Log entries one synchronous step of a log read looks at before it yields the event loop. */
const READ_STEP_ENTRIES = 1_000;
/** Event bytes one synchronous step of a log read decodes before it yields the event loop. */
const READ_STEP_BYTES = 4 << 20;
/** Log entries one page looks at, at most: a filtered page that matched few stops there. */
const PAGE_SCAN_LIMIT = 10_000;

/**
 * The Timebox backend over a Raft node: writes become commands proposed through the
 * replicator and resolve once applied on this node; the sequence check, and the log positions of
 * appended events, are decided in the replicated apply step. Reads, log reads included, come from
 * the local materialized state, by default after a linearizable read barrier (`reads` option).
 * Supports archiving (one life per ID) and keeps projection records in the replicated state.
 */
export class RaftBackend implements Backend {
  readonly name = 'raft';
  readonly capabilities: BackendCapabilities = { archive: true, readSide: true };
  readonly #state: MaterializedState;
  readonly #replicator: Replicator<CommandResult>;
  readonly #ownsNode: boolean;
  readonly #maxEntryBytes: number;
  readonly #archive: ArchiveConsumer;
  /** Present when reads wait for a linearizable read point. */
  readonly #fence: ReadFence | undefined;
  /** Stops this backend's live feeds on close. */
  readonly #feeds = new Set<() => void>();
  /** Projection records, written by replicated commands; see {@link RaftProjections}. */
  readonly projections: RaftProjections;
  /** The log's ID once read from the state (it never changes afterwards). */
  #logId: string | undefined;
  /** The running proposal that names the log, shared by concurrent callers. */
  #naming: Promise<void> | undefined;
  #closed: Promise<void> | undefined;

  /** @internal Built by `RaftMember.backend()` or `LocalRaftCluster`; its parts are internal. */
  constructor(options: RaftBackendOptions) {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options', 'must be an object', options);
    if (options.state === undefined) throw new InvalidArgumentError('options.state', 'is required', options.state);
    if (options.replicator === undefined || typeof options.replicator.propose !== 'function') {
      throw new InvalidArgumentError('options.replicator', 'must be a Replicator', options.replicator);
    }
    const leaseMs = options.archiveLeaseMs ?? 30_000;
    requirePositiveInteger('archiveLeaseMs', leaseMs);
    const recheckMs = options.archiveRecheckMs ?? 5_000;
    requirePositiveInteger('archiveRecheckMs', recheckMs);
    this.#state = options.state;
    this.#replicator = options.replicator;
    this.#ownsNode = options.ownsNode ?? false;
    this.#maxEntryBytes = resolveMaxEntryBytes(options.maxEntryBytes);
    this.#archive = new ArchiveConsumer(this.#state, this.#replicator, leaseMs, recheckMs);
    const reads = options.reads ?? 'linearizable';
    if (reads !== 'linearizable' && reads !== 'local') throw new InvalidArgumentError('reads', 'must be "linearizable" or "local"', reads);
    const replicator = options.replicator;
    this.#fence =
      reads === 'linearizable' && typeof replicator.readBarrier === 'function' ? new ReadFence(() => replicator.readBarrier!()) : undefined;
    const currentLogId = () => this.#currentLogId();
    this.log = Object.freeze({
      partitions: 1,
      // Read lazily: the log may be named only after this backend was built (by `ready()`).
      get id(): string {
        return currentLogId();
      },
    });
    this.projections = new RaftProjections({
      state: this.#state,
      propose: (command) => this.#propose(command),
      readPoint: (operation) => this.#readPoint(operation),
      assertOpen: (operation) => this.#assertOpen(operation),
      unexpected,
    });
  }

  /**
   * The cluster's log, with one partition. Its `id` is `raft:` and a random ID that the first
   * member to find the log unnamed proposed, replicated like every write (so every member, every
   * restart and every member restored from a snapshot gives the same one, and a cluster created
   * afresh another). The ID is known once `ready()` resolved, or once this member applied the
   * naming (a log read names the log too); reading `log.id` before that throws
   * `RaftLogUnnamedError`.
   */
  readonly log: LogDescriptor;

  /** The ID this backend's archive consumers hold leases under. */
  get consumerId(): string {
    return this.#archive.consumerId;
  }

  /** Resolves once a leader is known, this node caught up, and the log has its identity (see `log`). */
  async ready(): Promise<void> {
    this.#assertOpen('wait for readiness');
    await this.#replicator.ready();
    await this.#nameLog();
  }

  #currentLogId(): string {
    if (this.#logId === undefined) {
      const id = this.#state.logId();
      if (id === undefined) throw new RaftLogUnnamedError();
      this.#logId = `raft:${id}`;
    }
    return this.#logId;
  }

  /** Makes sure the log has its identity here, proposing one if this member has none applied. */
  async #nameLog(): Promise<void> {
    if (this.#logId !== undefined || this.#state.logId() !== undefined) return;
    // Concurrent proposals from several members are harmless: the first one applied names the log.
    this.#naming ??= this.#propose({ type: 'open-log', logId: randomUUID() }).then(
      async (result) => {
        if (result.type !== 'ok') throw unexpected('name the log', result);
        // A proposal is answered a moment before its batch is committed to the state it is read from.
        await this.#state.whenCommitted();
      },
      (error: unknown) => {
        this.#naming = undefined;
        throw error;
      },
    );
    await this.#naming;
  }

  /** Stops archive consumers (held records stop being renewed); closes replicator then state if it owns them. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#archive.close();
      for (const stop of [...this.#feeds]) stop();
      if (this.#ownsNode) {
        await this.#replicator.close();
        await this.#state.close();
      }
    })();
    return this.#closed;
  }

  async append(request: AppendRequest): Promise<AppendResult> {
    this.#assertOpen('append events');
    const result = await this.#propose({
      type: 'append',
      id: request.id,
      expectedSequence: request.expectedSequence,
      events: request.events,
      index: request.index,
    });
    if (result.type === 'appended') {
      const positions = new Array<number>(result.count);
      for (let i = 0; i < result.count; i++) positions[i] = result.firstPosition + i;
      return { ok: true, positions };
    }
    // An empty batch at the right sequence stores nothing.
    if (result.type === 'ok') return { ok: true, positions: [] };
    if (result.type === 'conflict') return { ok: false, actualSequence: result.actualSequence, newEvents: result.newEvents };
    throw unexpected('append', result);
  }

  /**
   * A page of the log from this member's state (same read point as the other reads). The page is
   * read in steps of at most 1,000 log entries (or 4 MiB of events), yielding the event loop between
   * them so heartbeats never wait behind a large page; a filtered page looks at no more than 10,000
   * log entries. Positions never move once given, so a page read in steps misses nothing.
   */
  async readLog(request: ReadLogRequest): Promise<LogPage> {
    this.#assertOpen('read the log');
    const { after, limit, types, prefix } = checkReadLog(request);
    await this.#nameLog();
    await this.#readPoint('read the log');
    // A local read (or one over the single-process replicator) would otherwise answer in
    // microtasks only: a reader polling the log in a loop would starve the event loop, and with it
    // the applying of the very appends it waits for, and the member's heartbeats.
    await this.#nextReadStep('read the log');
    const filter = { types: types === undefined ? undefined : new Set(types), prefix };
    const entries: LogEntry[] = [];
    let position = after;
    let scanned = 0;
    for (;;) {
      const step = this.#state.readLog(
        position,
        limit - entries.length,
        Math.min(READ_STEP_ENTRIES, PAGE_SCAN_LIMIT - scanned),
        READ_STEP_BYTES,
        filter,
      );
      for (const entry of step.entries) entries.push(entry);
      position = step.after;
      scanned += step.scanned;
      if (step.end) return { entries, after: [position], end: true };
      if (entries.length >= limit || scanned >= PAGE_SCAN_LIMIT) return { entries, after: [position], end: false };
      await this.#nextReadStep('read the log');
    }
  }

  /** The position of the newest event this member applied: everything at or below it is committed. */
  async logHead(): Promise<number[]> {
    this.#assertOpen('read the log');
    await this.#nameLog();
    await this.#readPoint('read the log');
    // As in readLog: a loop polling the head must not starve the event loop.
    await this.#nextReadStep('read the log');
    return [this.#state.logHead()];
  }

  async loadEvents(id: AggregateId, fromSequence: number): Promise<StoredEventRecord[]> {
    refuse(aggregateIdProblem(id));
    await this.#readPoint('load events');
    return this.#state.loadEvents(id, fromSequence);
  }

  async loadSnapshot(id: AggregateId): Promise<SnapshotRecord> {
    refuse(aggregateIdProblem(id));
    await this.#readPoint('load a snapshot');
    return this.#state.loadSnapshot(id);
  }

  async saveSnapshot(id: AggregateId, data: string, sequence: number, trim: boolean): Promise<void> {
    this.#assertOpen('save a snapshot');
    const result = await this.#propose({ type: 'save-snapshot', id, data, sequence, trim });
    if (result.type === 'ok') return;
    if (result.type === 'invalid-sequence') {
      throw new InvalidSequenceError('snapshot sequence', `is beyond the aggregate's next sequence ${result.nextSequence}`, sequence);
    }
    throw unexpected('save a snapshot', result);
  }

  async listAggregates(prefix: AggregateId, request: ListRequest): Promise<ListPage<AggregateId>> {
    refuse(prefixProblem(prefix));
    await this.#readPoint('list aggregates');
    return pageInChunks(
      request,
      (chunk) => this.#state.listAggregates(prefix, chunk),
      () => this.#nextReadStep('list aggregates'),
    );
  }

  async getAggregateStatus(id: AggregateId): Promise<string> {
    refuse(aggregateIdProblem(id));
    await this.#readPoint('read a status');
    return this.#state.getAggregateStatus(id);
  }

  async listAggregatesByStatus(status: string, request: ListRequest): Promise<ListPage<StatusListEntry>> {
    refuse(statusProblem(status));
    await this.#readPoint('list aggregates by status');
    return pageInChunks(
      request,
      (chunk) => this.#state.listAggregatesByStatus(status, chunk),
      () => this.#nextReadStep('list aggregates by status'),
    );
  }

  async listAggregatesByLabel(label: string, value: string, request: ListRequest): Promise<ListPage<AggregateId>> {
    refuse(labelProblem(label, value));
    await this.#readPoint('list aggregates by label');
    return pageInChunks(
      request,
      (chunk) => this.#state.listAggregatesByLabel(label, value, chunk),
      () => this.#nextReadStep('list aggregates by label'),
    );
  }

  async listLabelValues(label: string, request: ListRequest): Promise<ListPage<string>> {
    refuse(labelNameProblem(label));
    await this.#readPoint('list label values');
    return pageInChunks(
      request,
      (chunk) => this.#state.listLabelValues(label, chunk),
      () => this.#nextReadStep('list label values'),
    );
  }

  async archive(id: AggregateId): Promise<void> {
    this.#assertOpen('archive');
    const result = await this.#propose({ type: 'archive', id });
    if (result.type !== 'ok') throw unexpected('archive', result);
  }

  async consumeArchive(handler: (record: ArchiveRecordData) => Promise<void>, signal: AbortSignal | undefined): Promise<void> {
    this.#assertOpen('consume the archive');
    await this.#archive.consume(handler, signal);
  }

  /**
   * A live feed of the appends this node applies — every append of the cluster, since every node
   * applies every committed command — handed over after each batch is durable, in log order. A
   * snapshot installed from the leader replaces the state without replaying its appends: the feed
   * reports that as a gap.
   */
  async watch(sink: FeedSink): Promise<Feed> {
    this.#assertOpen('subscribe');
    const stopAppends = this.#state.onAppended((events) => sink.events(events[0]!.aggregateId, events.map(toRecord)));
    const stopRestores = this.#state.onRestored(() =>
      sink.gap('this node installed a state snapshot from the leader; the appends it covers were not seen one by one'),
    );
    const stop = () => {
      stopAppends();
      stopRestores();
      this.#feeds.delete(stop);
    };
    this.#feeds.add(stop);
    return { close: async () => stop() };
  }

  async #propose(command: Command): Promise<CommandResult> {
    // Refused here with a typed error before anything is proposed; the apply step would refuse it too.
    refuse(commandLimitProblem(command));
    // Encoding megabytes takes a while: a write whose caller data alone is over the limit is refused first.
    const atLeast = callerDataBytes(command);
    if (atLeast > this.#maxEntryBytes) throw new RaftEntryTooLargeError(entryContents(command), atLeast, this.#maxEntryBytes, true);
    const entry = encodeCommand(command);
    // An entry over the limit could not be sent to the followers in one frame: it would stall
    // replication for good, so it is refused here, before it reaches any log.
    if (entry.byteLength > this.#maxEntryBytes)
      throw new RaftEntryTooLargeError(entryContents(command), entry.byteLength, this.#maxEntryBytes);
    return this.#replicator.propose(entry);
  }

  /**
   * Checks the backend is open and, for linearizable reads, waits for the read point; in any mode
   * waits until every write this member already answered is committed to its state (a write is
   * answered once its result is final, a moment before the state's commit).
   */
  async #readPoint(operation: string): Promise<void> {
    this.#assertOpen(operation);
    if (this.#fence !== undefined) await this.#fence.wait();
    await this.#state.whenCommitted();
    // Closed while waiting: the state may be closed too.
    this.#assertOpen(operation);
  }

  /**
   * Between two synchronous steps of one read: lets timers and I/O run, then waits out a snapshot
   * restore that began meanwhile (a restore writes its image in steps too, and no read may see
   * part of it).
   */
  async #nextReadStep(operation: string): Promise<void> {
    await yieldToEventLoop();
    this.#assertOpen(operation);
    await this.#state.whenCommitted();
    this.#assertOpen(operation);
  }

  #assertOpen(operation: string): void {
    if (this.#closed !== undefined) throw new StoreClosedError(operation);
  }
}

/** Lets timers and I/O run (setImmediate runs after them). */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function toRecord(event: StoredEventRecord): StoredEventRecord {
  return { type: event.type, sequence: event.sequence, timestamp: event.timestamp, data: event.data, position: event.position };
}

/** Checks a log read request (core checks what it builds; this guards direct callers). */
function checkReadLog(request: ReadLogRequest): {
  after: number;
  limit: number;
  types: readonly string[] | undefined;
  prefix: AggregateId | undefined;
} {
  if (request === null || typeof request !== 'object') throw new InvalidArgumentError('request', 'must be an object', request);
  const { after, limit, types, prefix } = request;
  if (!Array.isArray(after) || after.length !== 1) throw new InvalidArgumentError('after', 'must hold one position (one partition)', after);
  const position: unknown = after[0];
  if (typeof position !== 'number' || !Number.isSafeInteger(position) || position < 0) {
    throw new InvalidArgumentError('after[0]', 'must be a whole number ≥ 0', position);
  }
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new InvalidArgumentError('limit', `must be a whole number from 1 to ${MAX_PAGE}`, limit);
  }
  if (types !== undefined && (!Array.isArray(types) || types.some((type) => typeof type !== 'string'))) {
    throw new InvalidArgumentError('types', 'must be an array of event type names', types);
  }
  if (prefix !== undefined && (!Array.isArray(prefix) || prefix.some((part) => typeof part !== 'string'))) {
    throw new InvalidArgumentError('prefix', 'must be an array of ID parts', prefix);
  }
  return { after: position, limit, types, prefix: prefix === undefined || prefix.length === 0 ? undefined : prefix };
}

/**
 * Throws the typed error for a storage limit an argument breaks. Reads check their keys too: LMDB
 * refuses an oversized key with a plain Error, and such a key can match nothing stored anyway.
 */
function refuse(problem: LimitProblem | undefined): void {
  if (problem !== undefined) throw new InvalidArgumentError(problem.field, problem.rule, problem.value);
}

/** UTF-8 bytes of the large caller strings a command carries: a lower bound of its encoded size. */
function callerDataBytes(command: Command): number {
  switch (command.type) {
    case 'append': {
      let bytes = 0;
      for (const event of command.events) bytes += Buffer.byteLength(event.data, 'utf8');
      return bytes;
    }
    case 'save-snapshot':
      return Buffer.byteLength(command.data, 'utf8');
    case 'save-projection':
    case 'reset-projection':
      return command.checkpoint === undefined ? 0 : Buffer.byteLength(command.checkpoint, 'utf8');
    default:
      return 0;
  }
}

/** What a command's log entry carries, for `RaftEntryTooLargeError`'s message. */
function entryContents(command: Command): string {
  switch (command.type) {
    case 'append':
      return 'events';
    case 'save-snapshot':
      return 'snapshot';
    case 'save-projection':
    case 'reset-projection':
      return 'projection checkpoint';
    default:
      return `${command.type} command`;
  }
}

function unexpected(operation: string, result: CommandResult): Error {
  if (result.type === 'invalid-command') return new RaftCommandRejectedError(result.reason);
  return new RaftCommandRejectedError(`unexpected answer to ${operation}: ${result.type}`);
}
