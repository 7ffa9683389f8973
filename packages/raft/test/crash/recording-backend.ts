import type {
  AggregateId,
  AppendRequest,
  AppendResult,
  Backend,
  BackendCapabilities,
  EventRecord,
  ListPage,
  ListRequest,
  SnapshotRecord,
  StatusListEntry,
  StoredEventRecord,
} from '@timebox/core';
import { aggregateKey, type AppendedPayload } from './protocol.js';
import type { HistoryWriter } from './history-file.js';

/**
 * A backend that forwards everything to `inner` and writes each append attempt into the history:
 * the `call` line before the append goes out, the answer line after. Recording at the backend
 * (not around `exec`) gives the checker every attempt of an executor, retries included, each
 * with the expected sequence it really carried.
 */
export class RecordingBackend implements Backend {
  readonly name: string;
  readonly capabilities: BackendCapabilities = { archive: false };
  readonly #inner: Backend;
  readonly #history: HistoryWriter;
  readonly #client: string;
  #oks = 0;

  constructor(inner: Backend, history: HistoryWriter, client: string) {
    this.#inner = inner;
    this.#history = history;
    this.#client = client;
    this.name = `recording(${inner.name})`;
  }

  /** Appends answered `ok` so far. */
  get oks(): number {
    return this.#oks;
  }

  async append(request: AppendRequest): Promise<AppendResult> {
    if (request.events.length !== 1) throw new Error(`the crash workload appends one event at a time, got ${request.events.length}`);
    const { op } = JSON.parse((request.events[0] as EventRecord).data) as AppendedPayload;
    const aggregate = aggregateKey(request.id);
    this.#history.write({ t: 'call', op, client: this.#client, aggregate, expected: request.expectedSequence, at: Date.now() });
    let result: AppendResult;
    try {
      result = await this.#inner.append(request);
    } catch (error) {
      this.#history.write({
        t: 'error',
        op,
        error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
        at: Date.now(),
      });
      throw error;
    }
    if (result.ok) {
      this.#history.write({ t: 'ok', op, at: Date.now() });
      this.#oks++;
    } else {
      this.#history.write({ t: 'conflict', op, actual: result.actualSequence, at: Date.now() });
    }
    return result;
  }

  ready(): Promise<void> {
    return this.#inner.ready();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  loadEvents(id: AggregateId, fromSequence: number): Promise<StoredEventRecord[]> {
    return this.#inner.loadEvents(id, fromSequence);
  }

  loadSnapshot(id: AggregateId): Promise<SnapshotRecord> {
    return this.#inner.loadSnapshot(id);
  }

  saveSnapshot(id: AggregateId, data: string, sequence: number, trim: boolean): Promise<void> {
    return this.#inner.saveSnapshot(id, data, sequence, trim);
  }

  listAggregates(prefix: AggregateId, request: ListRequest): Promise<ListPage<AggregateId>> {
    return this.#inner.listAggregates(prefix, request);
  }

  getAggregateStatus(id: AggregateId): Promise<string> {
    return this.#inner.getAggregateStatus(id);
  }

  listAggregatesByStatus(status: string, request: ListRequest): Promise<ListPage<StatusListEntry>> {
    return this.#inner.listAggregatesByStatus(status, request);
  }

  listAggregatesByLabel(label: string, value: string, request: ListRequest): Promise<ListPage<AggregateId>> {
    return this.#inner.listAggregatesByLabel(label, value, request);
  }

  listLabelValues(label: string, request: ListRequest): Promise<ListPage<string>> {
    return this.#inner.listLabelValues(label, request);
  }
}
