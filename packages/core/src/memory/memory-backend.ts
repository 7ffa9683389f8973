import type {
  AppendRequest,
  AppendResult,
  ArchiveRecordData,
  Backend,
  BackendCapabilities,
  Feed,
  FeedSink,
  ListPage,
  ListRequest,
  LogDescriptor,
  LogPage,
  ProjectionStore,
  ReadLogRequest,
  SnapshotRecord,
  StatusListEntry,
} from '../backend.js';
import { requirePositiveInteger } from '../config.js';
import { StoreClosedError } from '../errors.js';
import type { StoredEventRecord } from '../event.js';
import type { AggregateId } from '../id.js';
import { MemoryDatabase } from './database.js';

export interface MemoryBackendOptions {
  /**
   * The data to serve. Pass one database to several backends to model several processes sharing
   * a store; by default each backend has its own.
   */
  readonly database?: MemoryDatabase;
  /**
   * How long (ms) an archive record stays leased to a consumer whose backend closed before it is
   * offered to another, for a new database; a running handler's lease is renewed every third of
   * this. Default 30000.
   */
  readonly archiveLeaseMs?: number;
}

/** The in-process backend: for tests and single-process use. Supports archiving. */
export class MemoryBackend implements Backend {
  readonly name = 'memory';
  readonly capabilities: BackendCapabilities = { archive: true, readSide: true };
  readonly database: MemoryDatabase;
  readonly log: LogDescriptor;
  readonly projections: ProjectionStore;
  #closed = false;
  /** Aborted on close: archive records this connection holds stop being renewed. */
  readonly #closing = new AbortController();

  constructor(options: MemoryBackendOptions = {}) {
    if (options.archiveLeaseMs !== undefined) requirePositiveInteger('archiveLeaseMs', options.archiveLeaseMs);
    this.database = options.database ?? new MemoryDatabase(options.archiveLeaseMs);
    this.log = { id: this.database.id, partitions: 1 };
    this.projections = guardProjections(this.database.projections, (operation) => this.#assertOpen(operation));
  }

  async ready(): Promise<void> {
    this.#assertOpen('wait for readiness');
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#closing.abort();
  }

  async append(request: AppendRequest): Promise<AppendResult> {
    this.#assertOpen('append events');
    return this.database.append(request);
  }

  async loadEvents(id: AggregateId, fromSequence: number): Promise<StoredEventRecord[]> {
    this.#assertOpen('load events');
    return this.database.loadEvents(id, fromSequence);
  }

  async loadSnapshot(id: AggregateId): Promise<SnapshotRecord> {
    this.#assertOpen('load a snapshot');
    return this.database.loadSnapshot(id);
  }

  async saveSnapshot(id: AggregateId, data: string, sequence: number, trim: boolean): Promise<void> {
    this.#assertOpen('save a snapshot');
    this.database.saveSnapshot(id, data, sequence, trim);
  }

  async readLog(request: ReadLogRequest): Promise<LogPage> {
    this.#assertOpen('read the log');
    return this.database.readLog(request);
  }

  async logHead(): Promise<number[]> {
    this.#assertOpen('read the log');
    return this.database.logHead();
  }

  async listAggregates(prefix: AggregateId, request: ListRequest): Promise<ListPage<AggregateId>> {
    this.#assertOpen('list aggregates');
    return this.database.listAggregates(prefix, request);
  }

  async getAggregateStatus(id: AggregateId): Promise<string> {
    this.#assertOpen('read a status');
    return this.database.getAggregateStatus(id);
  }

  async listAggregatesByStatus(status: string, request: ListRequest): Promise<ListPage<StatusListEntry>> {
    this.#assertOpen('list aggregates by status');
    return this.database.listAggregatesByStatus(status, request);
  }

  async listAggregatesByLabel(label: string, value: string, request: ListRequest): Promise<ListPage<AggregateId>> {
    this.#assertOpen('list aggregates by label');
    return this.database.listAggregatesByLabel(label, value, request);
  }

  async listLabelValues(label: string, request: ListRequest): Promise<ListPage<string>> {
    this.#assertOpen('list label values');
    return this.database.listLabelValues(label, request);
  }

  async archive(id: AggregateId): Promise<void> {
    this.#assertOpen('archive');
    this.database.archiveAggregate(id);
  }

  async consumeArchive(handler: (record: ArchiveRecordData) => Promise<void>, signal: AbortSignal | undefined): Promise<void> {
    this.#assertOpen('consume the archive');
    await this.database.archive.consume(handler, signal, this.#closing.signal);
  }

  /** Appends to the shared database by any backend over it reach `sink` as they are stored. */
  async watch(sink: FeedSink): Promise<Feed> {
    this.#assertOpen('subscribe');
    const stop = this.database.watch(sink);
    const stopOnClose = () => stop();
    this.#closing.signal.addEventListener('abort', stopOnClose, { once: true });
    return {
      close: async () => {
        stop();
        this.#closing.signal.removeEventListener('abort', stopOnClose);
      },
    };
  }

  #assertOpen(operation: string): void {
    if (this.#closed) throw new StoreClosedError(operation);
  }
}

/** The database's projection records, refused once this backend is closed. */
function guardProjections(inner: ProjectionStore, assertOpen: (operation: string) => void): ProjectionStore {
  return {
    load: async (name) => (assertOpen('read a projection'), inner.load(name)),
    claim: async (name, holder, leaseMs) => (assertOpen('claim a projection'), inner.claim(name, holder, leaseMs)),
    save: async (name, holder, generation, update, leaseMs) => (
      assertOpen('save a projection'),
      inner.save(name, holder, generation, update, leaseMs)
    ),
    release: async (name, holder) => (assertOpen('release a projection'), inner.release(name, holder)),
    reset: async (name, checkpoint) => (assertOpen('reset a projection'), inner.reset(name, checkpoint)),
  };
}
