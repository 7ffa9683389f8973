import {
  requirePositiveInteger,
  StoreClosedError,
  type AggregateId,
  type AppendRequest,
  type AppendResult,
  type ArchiveRecordData,
  type Backend,
  type BackendCapabilities,
  type EventRecord,
  type Feed,
  type FeedSink,
  type SnapshotRecord,
} from '@timebox/core';
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
  readonly capabilities: BackendCapabilities = { archive: true };
  readonly database: MemoryDatabase;
  #closed = false;
  /** Aborted on close: archive records this connection holds stop being renewed. */
  readonly #closing = new AbortController();

  constructor(options: MemoryBackendOptions = {}) {
    if (options.archiveLeaseMs !== undefined) requirePositiveInteger('archiveLeaseMs', options.archiveLeaseMs);
    this.database = options.database ?? new MemoryDatabase(options.archiveLeaseMs);
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

  async loadEvents(id: AggregateId, fromSequence: number): Promise<EventRecord[]> {
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

  async listAggregates(prefix: AggregateId): Promise<AggregateId[]> {
    this.#assertOpen('list aggregates');
    return this.database.listAggregates(prefix);
  }

  async getAggregateStatus(id: AggregateId): Promise<string> {
    this.#assertOpen('read a status');
    return this.database.getAggregateStatus(id);
  }

  async listAggregatesByStatus(status: string): Promise<{ id: AggregateId; timestamp: number }[]> {
    this.#assertOpen('list aggregates by status');
    return this.database.listAggregatesByStatus(status);
  }

  async listAggregatesByLabel(label: string, value: string): Promise<AggregateId[]> {
    this.#assertOpen('list aggregates by label');
    return this.database.listAggregatesByLabel(label, value);
  }

  async listLabelValues(label: string): Promise<string[]> {
    this.#assertOpen('list label values');
    return this.database.listLabelValues(label);
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
