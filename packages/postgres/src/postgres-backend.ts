import type { Sql } from 'postgres';
import {
  InvalidSequenceError,
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
  HubUnavailableError,
} from '@timebox/core';
import { ArchiveConsumer } from './archive-consumer.js';
import { guard, onlyRow } from './errors.js';
import { FeedReader } from './feed-reader.js';
import { resolveOptions, type PostgresBackendOptions } from './options.js';
import { ensureSchema } from './schema.js';
import { parseEventList } from './event-list.js';
import { aggregateIdFromKey, aggregateKey, compareCodeUnits, descendantKeyRange, fromStoredText, toStoredText } from './text-codec.js';

interface AppendRow {
  actual: number;
  /** On a conflict, the events from the expected sequence on (see `parseEventList`). */
  events: string | null;
}

interface EventRow {
  sequence: number;
  type: string;
  time: number;
  data: string;
}

/**
 * The PostgreSQL backend, through postgres.js. Appends, snapshot saves and archive moves are one
 * call each to server-side functions the schema step installs; every value is a bound parameter.
 * Supports archiving.
 */
export class PostgresBackend implements Backend {
  readonly name = 'postgres';
  readonly capabilities: BackendCapabilities = { archive: true };
  /** The store namespace every row of this backend carries, as stored. */
  readonly #prefix: string;
  readonly #sql: Sql;
  readonly #ownsSql: boolean;
  readonly #archive: ArchiveConsumer;
  readonly #feedRetention: number;
  readonly #feeds = new Set<FeedReader>();
  #ready: Promise<void> | undefined;
  #closed = false;

  /** Validates `options` (throwing `ConfigError`); connects lazily, on `ready()` or first use. */
  constructor(options: PostgresBackendOptions) {
    const resolved = resolveOptions(options);
    this.#prefix = resolved.storedPrefix;
    this.#sql = resolved.sql;
    this.#ownsSql = resolved.ownsSql;
    this.#archive = new ArchiveConsumer(this.#sql, this.#prefix, resolved.archiveLeaseMs);
    this.#feedRetention = resolved.feedRetention;
  }

  /** Connects and creates or migrates the schema (once; a failed attempt is retried next call). */
  ready(): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreClosedError('wait for readiness'));
    this.#ready ??= guard('create the schema', () => ensureSchema(this.#sql)).catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#archive.close();
    await Promise.all([...this.#feeds].map((feed) => feed.close()));
    if (this.#ownsSql) await this.#sql.end({ timeout: 5 });
  }

  async append({ id, expectedSequence, events, index }: AppendRequest): Promise<AppendResult> {
    await this.#open('append events');
    // The batch and label changes travel as JSON text, not arrays: pools the backend opens run
    // without the driver's array type lookup (see options.ts), and a caller's own instance may
    // too. Labels go as [name, value] pairs, so any name (even `__proto__`) is plain data. The
    // parameters are typed text (then cast): typed json, the driver would stringify them again.
    const batch = JSON.stringify(events.map((event) => [toStoredText(event.type), event.timestamp, event.data]));
    const labels = JSON.stringify(Object.entries(index?.labels ?? {}).map(([name, value]) => [toStoredText(name), toStoredText(value)]));
    const status = index?.status === undefined ? null : toStoredText(index.status);
    const statusTime = index?.statusTime ?? null;
    const rows = await guard(
      'append events',
      () => this.#sql<AppendRow[]>`
      SELECT actual, events FROM timebox_append(${this.#prefix}, ${aggregateKey(id)}, ${expectedSequence},
        ${batch}::text::json, ${status}, ${statusTime}, ${labels}::text::json, ${this.#feedRetention}::int)`,
    );
    const { actual, events: stored } = onlyRow('append events', rows);
    if (actual === expectedSequence) return { ok: true };
    const newEvents = stored === null ? [] : parseEventList(stored);
    return { ok: false, actualSequence: actual, newEvents };
  }

  /**
   * Reads the store's feed: every append (from any process) writes a feed row in its transaction
   * and notifies at commit. The LISTEN connection is one more than `maxConns`. See `FeedReader`
   * for ordering, resuming and gap reporting.
   */
  async watch(sink: FeedSink): Promise<Feed> {
    if (this.#feedRetention === 0) throw new HubUnavailableError('postgres (feedRetention: 0 turned its feed off)');
    await this.#open('subscribe');
    const reader = await FeedReader.open(this.#sql, this.#prefix, sink);
    this.#feeds.add(reader);
    return {
      close: async () => {
        this.#feeds.delete(reader);
        await reader.close();
      },
    };
  }

  async loadEvents(id: AggregateId, fromSequence: number): Promise<EventRecord[]> {
    await this.#open('load events');
    const rows = await guard(
      'load events',
      () => this.#sql<EventRow[]>`
      SELECT e.sequence::float8 AS sequence, e.type, e.time_ms::float8 AS time, e.data FROM timebox_events e
       WHERE e.prefix = ${this.#prefix} AND e.aggregate = ${aggregateKey(id)} AND e.sequence >= ${fromSequence}
       ORDER BY e.sequence`,
    );
    return rows.map(toEventRecord);
  }

  async loadSnapshot(id: AggregateId): Promise<SnapshotRecord> {
    await this.#open('load a snapshot');
    const key = aggregateKey(id);
    // One statement, so the snapshot and its trailing events come from one consistent view.
    const rows = await guard(
      'load a snapshot',
      () => this.#sql<(EventRow & { snapshot: boolean })[]>`
      SELECT s.sequence::float8 AS sequence, NULL::text AS type, NULL::float8 AS time, s.data, true AS snapshot
        FROM timebox_snapshot s WHERE s.prefix = ${this.#prefix} AND s.aggregate = ${key}
      UNION ALL
      SELECT e.sequence::float8, e.type, e.time_ms::float8, e.data, false
        FROM timebox_events e
       WHERE e.prefix = ${this.#prefix} AND e.aggregate = ${key}
         AND e.sequence >= coalesce((SELECT sequence FROM timebox_snapshot
                                      WHERE prefix = ${this.#prefix} AND aggregate = ${key}), 0)
      ORDER BY snapshot DESC, sequence`,
    );
    const snapshot = rows[0]?.snapshot === true ? rows[0] : undefined;
    const events = (snapshot ? rows.slice(1) : rows).map(toEventRecord);
    return { data: snapshot?.data, sequence: snapshot?.sequence ?? 0, events };
  }

  async saveSnapshot(id: AggregateId, data: string, sequence: number, trim: boolean): Promise<void> {
    await this.#open('save a snapshot');
    const rows = await guard(
      'save a snapshot',
      () => this.#sql<{ next: number }[]>`
      SELECT timebox_save_snapshot(${this.#prefix}, ${aggregateKey(id)}, ${sequence}, ${data}, ${trim}) AS next`,
    );
    const { next } = onlyRow('save a snapshot', rows);
    if (sequence > next) {
      throw new InvalidSequenceError('snapshot sequence', `is beyond the aggregate's next sequence ${next}`, sequence);
    }
  }

  async listAggregates(prefix: AggregateId): Promise<AggregateId[]> {
    await this.#open('list aggregates');
    const rows =
      prefix.length === 0
        ? await guard(
            'list aggregates',
            () => this.#sql<{ aggregate: string }[]>`
            SELECT aggregate FROM timebox_index WHERE prefix = ${this.#prefix} ORDER BY aggregate`,
          )
        : await this.#listUnder(prefix);
    return rows.map((row) => aggregateIdFromKey(row.aggregate));
  }

  async getAggregateStatus(id: AggregateId): Promise<string> {
    await this.#open('read a status');
    const rows = await guard(
      'read a status',
      () => this.#sql<{ status: string }[]>`
      SELECT status FROM timebox_index WHERE prefix = ${this.#prefix} AND aggregate = ${aggregateKey(id)}`,
    );
    return fromStoredText(rows[0]?.status ?? '');
  }

  async listAggregatesByStatus(status: string): Promise<{ id: AggregateId; timestamp: number }[]> {
    await this.#open('list aggregates by status');
    if (status === '') return [];
    const rows = await guard(
      'list aggregates by status',
      () => this.#sql<{ aggregate: string; time: number }[]>`
      SELECT aggregate, status_time::float8 AS time FROM timebox_index
       WHERE prefix = ${this.#prefix} AND status = ${toStoredText(status)} AND status <> ''
       ORDER BY status_time, aggregate`,
    );
    return rows.map((row) => ({ id: aggregateIdFromKey(row.aggregate), timestamp: row.time }));
  }

  async listAggregatesByLabel(label: string, value: string): Promise<AggregateId[]> {
    await this.#open('list aggregates by label');
    if (value === '') return [];
    const rows = await guard(
      'list aggregates by label',
      () => this.#sql<{ aggregate: string }[]>`
      SELECT aggregate FROM timebox_labels
       WHERE prefix = ${this.#prefix} AND label = ${toStoredText(label)} AND value = ${toStoredText(value)}
       ORDER BY aggregate`,
    );
    return rows.map((row) => aggregateIdFromKey(row.aggregate));
  }

  async listLabelValues(label: string): Promise<string[]> {
    await this.#open('list label values');
    const stored = toStoredText(label);
    // A loose index scan: one index probe per distinct value, however many aggregates hold each.
    const rows = await guard(
      'list label values',
      () => this.#sql<{ value: string }[]>`
      WITH RECURSIVE v AS (
        (SELECT value FROM timebox_labels
          WHERE prefix = ${this.#prefix} AND label = ${stored} ORDER BY value LIMIT 1)
        UNION ALL
        SELECT (SELECT l.value FROM timebox_labels l
                 WHERE l.prefix = ${this.#prefix} AND l.label = ${stored} AND l.value > v.value
                 ORDER BY l.value LIMIT 1)
          FROM v WHERE v.value IS NOT NULL)
      SELECT value FROM v WHERE value IS NOT NULL`,
    );
    // The index yields UTF-8 byte (code point) order, which differs from JavaScript's UTF-16
    // code unit order only between astral characters and U+E000..U+FFFF; re-sort to be exact.
    return rows.map((row) => fromStoredText(row.value)).sort(compareCodeUnits);
  }

  async archive(id: AggregateId): Promise<void> {
    await this.#open('archive');
    await guard('archive', () => this.#sql`SELECT timebox_archive_aggregate(${this.#prefix}, ${aggregateKey(id)})`);
  }

  async consumeArchive(handler: (record: ArchiveRecordData) => Promise<void>, signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    await this.#open('consume the archive');
    await this.#archive.consume(handler, signal);
  }

  #listUnder(prefix: AggregateId): Promise<{ aggregate: string }[]> {
    const exact = aggregateKey(prefix);
    const { low, high } = descendantKeyRange(prefix);
    return guard(
      'list aggregates',
      () => this.#sql<{ aggregate: string }[]>`
      SELECT aggregate FROM timebox_index
       WHERE prefix = ${this.#prefix}
         AND (aggregate = ${exact} OR (aggregate >= ${low} AND aggregate < ${high}))
       ORDER BY aggregate`,
    );
  }

  /** Throws when closed; otherwise makes sure the schema exists before the first statement. */
  async #open(operation: string): Promise<void> {
    this.#assertOpen(operation);
    await (this.#ready ?? this.ready());
  }

  #assertOpen(operation: string): void {
    if (this.#closed) throw new StoreClosedError(operation);
  }
}

function toEventRecord(row: EventRow): EventRecord {
  return { type: fromStoredText(row.type), sequence: row.sequence, timestamp: row.time, data: row.data };
}
