import type { Sql, TransactionSql } from 'postgres';
import {
  type AggregateId,
  type AppendRequest,
  type AppendResult,
  type ArchiveRecordData,
  type Backend,
  type BackendCapabilities,
  type Feed,
  type FeedSink,
  hasLoneSurrogate,
  InvalidCursorError,
  InvalidSequenceError,
  type ListPage,
  type ListRequest,
  type LogDescriptor,
  type LogPage,
  type ProjectionWrite,
  type ReadLogRequest,
  type SnapshotRecord,
  type StatusListEntry,
  StoreClosedError,
  type StoredEventRecord,
} from '@timebox/core';
import { ArchiveConsumer } from './archive-consumer.js';
import { guard, onlyRow } from './errors.js';
import { FeedNotifier } from './feed-notifier.js';
import { FeedReader } from './feed-reader.js';
import { resolveOptions, type PostgresBackendOptions } from './options.js';
import { PostgresProjections, type SaveUpdate } from './projections.js';
import { ensureSchema, SETTLE_WAIT_MS } from './schema.js';
import { parseEventList, parseLogEntries } from './event-codec.js';
import { AppendBatcher } from './append-batcher.js';
import { appendStatement, readHead, type StoredAppend } from './append-statement.js';
import { aggregateIdFromKey, aggregateKey, descendantKeyRange, fromStoredText, toStoredText } from './text-codec.js';

interface EventRow {
  sequence: number;
  type: string;
  time: number;
  data: string;
  position: number;
}

interface LogRow {
  settled: boolean;
  upto: number;
  more: boolean;
  /** JSON text, see `parseLogEntries`; null for an empty page. */
  events: string | null;
}

/** With a type or aggregate filter, a page looks at this many events at most to find its matches. */
const FILTERED_SCAN_WINDOW = 5_000;

/**
 * The PostgreSQL backend, through postgres.js. Appends, snapshot saves and archive moves are one
 * call each to server-side functions the schema step installs; every value is a bound parameter.
 * Supports archiving and the read side: every event has a position from one global sequence,
 * `readLog` and `logHead` return only the settled part of the log (positions can commit out of
 * order; see the README's _Positions and the log_), an archived ID keeps a tombstone so its next
 * life starts past the old one, and `projections` keeps projection records in
 * `timebox_projection`, with `saveProjectionWith` for read models written in the checkpoint's
 * transaction.
 */
export class PostgresBackend implements Backend {
  readonly name = 'postgres';
  readonly capabilities: BackendCapabilities = { archive: true, readSide: true };
  /**
   * The store's log: one partition, named by the prefix (`postgres:<prefix>`), so every backend
   * over the same prefix reads the same checkpoints and another prefix refuses them.
   */
  readonly log: LogDescriptor;
  /** Projection records in `timebox_projection` (see `PostgresProjections`). */
  readonly projections: PostgresProjections;
  /** The store namespace every row of this backend carries, as stored. */
  readonly #prefix: string;
  readonly #sql: Sql;
  readonly #ownsSql: boolean;
  readonly #archive: ArchiveConsumer;
  readonly #openTransactionSql: () => Sql;
  readonly #openConnection: () => Sql;
  /** The pool of transactional projections, opened on first use (see `runTransaction`). */
  #transactionSql: Sql | undefined;
  readonly #feeds = new Set<FeedReader>();
  readonly #notifier: FeedNotifier;
  /** Undefined when appends have no connections of their own: each then takes a pool connection. */
  readonly #batcher: AppendBatcher | undefined;
  #ready: Promise<void> | undefined;
  #closed = false;

  /** Validates `options` (throwing `ConfigError`); connects lazily, on `ready()` or first use. */
  constructor(options: PostgresBackendOptions) {
    const resolved = resolveOptions(options);
    this.#prefix = resolved.storedPrefix;
    this.#sql = resolved.sql;
    this.#ownsSql = resolved.ownsSql;
    this.#archive = new ArchiveConsumer(this.#sql, this.#prefix, resolved.archiveLeaseMs);
    this.#notifier = new FeedNotifier(resolved.openConnection, this.#prefix);
    this.#batcher =
      resolved.appendConnections > 0
        ? new AppendBatcher(Array.from({ length: resolved.appendConnections }, () => resolved.openConnection()))
        : undefined;
    this.#openConnection = resolved.openConnection;
    this.log = Object.freeze({ id: `postgres:${options.prefix}`, partitions: 1 });
    this.#openTransactionSql = resolved.openTransactionSql;
    this.projections = new PostgresProjections(
      this.#sql,
      this.#prefix,
      (operation) => this.#open(operation),
      () => {
        // Not after close: a pool opened then would never be ended.
        this.#assertOpen('save a projection with its transaction');
        return (this.#transactionSql ??= this.#openTransactionSql());
      },
    );
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
    await this.#notifier.close();
    await this.#transactionSql?.end({ timeout: 5 });
    await this.#batcher?.close();
    if (this.#ownsSql) await this.#sql.end({ timeout: 5 });
  }

  async append({ id, expectedSequence, events, index }: AppendRequest): Promise<AppendResult> {
    await this.#open('append events');
    const aggregate = aggregateKey(id);
    const append: StoredAppend = {
      prefix: this.#prefix,
      aggregate,
      expected: expectedSequence,
      events: events.map((event) => [toStoredText(event.type), event.timestamp, event.data] as const),
      status: index?.status === undefined ? null : toStoredText(index.status),
      statusTime: index?.statusTime ?? null,
      // [name, value] pairs, so any name (even `__proto__`) is plain data.
      labels: Object.entries(index?.labels ?? {}).map(([name, value]) => [toStoredText(name), toStoredText(value)] as const),
    };
    for (;;) {
      if (events.length > 0) {
        const batcher = this.#batcher;
        const { positions, notify } = await guard('append events', () =>
          batcher === undefined ? appendStatement(this.#sql, append) : batcher.submit(append),
        );
        if (positions !== null) {
          if (notify) this.#notifier.notify();
          return { ok: true, positions };
        }
      }
      const head = await guard('append events', () => readHead(this.#sql, this.#prefix, aggregate, expectedSequence));
      if (head.next !== expectedSequence) {
        return { ok: false, actualSequence: head.next, newEvents: head.events === null ? [] : parseEventList(head.events) };
      }
      if (events.length === 0) return { ok: true, positions: [] };
      // The head is at the expected sequence after all: an append the write could not see yet
      // (the aggregate's first, still uncommitted then) has committed since. Try again.
    }
  }

  /**
   * The store's feed, read from the log itself (appends write nothing for it): a `FeedReader`
   * starts at the settled head and reads the settled log above its position whenever an
   * appending process announces a commit (`FeedNotifier`, while a subscriber holds a lease) and
   * once a second as a backstop. It reads on a connection of its own (its reads may wait for
   * appends in flight, and must not hold one of the pool's meanwhile) and listens on another: two
   * beyond `maxConns`. See `FeedReader` for ordering, resuming and gap reporting.
   */
  async watch(sink: FeedSink): Promise<Feed> {
    await this.#open('subscribe');
    const reader = await FeedReader.open(this.#openConnection(), this.#prefix, sink, async () => (await this.logHead())[0] as number);
    this.#feeds.add(reader);
    return {
      close: async () => {
        this.#feeds.delete(reader);
        await reader.close();
      },
    };
  }

  async loadEvents(id: AggregateId, fromSequence: number): Promise<StoredEventRecord[]> {
    await this.#open('load events');
    const rows = await guard(
      'load events',
      () => this.#sql<EventRow[]>`
      SELECT e.sequence::float8 AS sequence, e.type, e.time_ms::float8 AS time, e.data, e.position::float8 AS position
        FROM timebox_events e
       WHERE e.prefix = ${this.#prefix} AND e.aggregate = ${aggregateKey(id)} AND e.sequence >= ${fromSequence}
       ORDER BY e.sequence`,
    );
    return rows.map(toEventRecord);
  }

  async loadSnapshot(id: AggregateId): Promise<SnapshotRecord> {
    await this.#open('load a snapshot');
    const key = aggregateKey(id);
    // One statement, so the snapshot, the life start and the trailing events come from one
    // consistent view. Rows: the snapshot (kind 0), the head row's life start (kind 1), the events.
    const rows = await guard(
      'load a snapshot',
      () => this.#sql<(EventRow & { kind: number })[]>`
      SELECT s.sequence::float8 AS sequence, NULL::text AS type, NULL::float8 AS time, s.data, NULL::float8 AS position, 0 AS kind
        FROM timebox_snapshot s WHERE s.prefix = ${this.#prefix} AND s.aggregate = ${key}
      UNION ALL
      SELECT i.life_start::float8, NULL, NULL, NULL, NULL, 1
        FROM timebox_index i WHERE i.prefix = ${this.#prefix} AND i.aggregate = ${key}
      UNION ALL
      SELECT e.sequence::float8, e.type, e.time_ms::float8, e.data, e.position::float8, 2
        FROM timebox_events e
       WHERE e.prefix = ${this.#prefix} AND e.aggregate = ${key}
         AND e.sequence >= coalesce((SELECT sequence FROM timebox_snapshot
                                      WHERE prefix = ${this.#prefix} AND aggregate = ${key}), 0)
      ORDER BY kind, sequence`,
    );
    const snapshot = rows.find((row) => row.kind === 0);
    const lifeStart = rows.find((row) => row.kind === 1)?.sequence ?? 0;
    const events = rows.filter((row) => row.kind === 2).map(toEventRecord);
    // Old lives' events and snapshots are gone (archived), so whatever is stored belongs to this life.
    return { data: snapshot?.data, sequence: snapshot?.sequence ?? lifeStart, events };
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

  // The list queries are keyset pages: `LIMIT limit + 1` rows after the previous page's last key,
  // read along an index, so a page costs its own size and a row that stays put is returned once.

  async listAggregates(prefix: AggregateId, { limit, after }: ListRequest): Promise<ListPage<AggregateId>> {
    await this.#open('list aggregates');
    const sql = this.#sql;
    const afterKey = after === undefined ? sql`` : sql`AND aggregate > ${textCursor(after)}`;
    let under = sql``;
    if (prefix.length > 0) {
      const { low, high } = descendantKeyRange(prefix);
      under = sql`AND (aggregate = ${aggregateKey(prefix)} OR (aggregate >= ${low} AND aggregate < ${high}))`;
    }
    const rows = await guard(
      'list aggregates',
      () => sql<{ aggregate: string }[]>`
      SELECT aggregate FROM timebox_index
       WHERE prefix = ${this.#prefix} AND live ${under} ${afterKey}
       ORDER BY aggregate LIMIT ${limit + 1}`,
    );
    return keysetPage(
      rows,
      limit,
      (row) => row.aggregate,
      (row) => aggregateIdFromKey(row.aggregate),
    );
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

  async listAggregatesByStatus(status: string, { limit, after }: ListRequest): Promise<ListPage<StatusListEntry>> {
    await this.#open('list aggregates by status');
    if (status === '') return { items: [] };
    const sql = this.#sql;
    let afterKey = sql``;
    if (after !== undefined) {
      const [time, aggregate] = statusCursor(after);
      afterKey = sql`AND (status_time, aggregate) > (${time}, ${aggregate})`;
    }
    const rows = await guard(
      'list aggregates by status',
      () => sql<{ aggregate: string; time: string }[]>`
      SELECT aggregate, status_time::text AS time FROM timebox_index
       WHERE prefix = ${this.#prefix} AND status = ${toStoredText(status)} AND status <> '' ${afterKey}
       ORDER BY status_time, aggregate LIMIT ${limit + 1}`,
    );
    return keysetPage(
      rows,
      limit,
      (row) => JSON.stringify([row.time, row.aggregate]),
      (row) => ({ id: aggregateIdFromKey(row.aggregate), timestamp: Number(row.time) }),
    );
  }

  async listAggregatesByLabel(label: string, value: string, { limit, after }: ListRequest): Promise<ListPage<AggregateId>> {
    await this.#open('list aggregates by label');
    if (value === '') return { items: [] };
    const sql = this.#sql;
    const afterKey = after === undefined ? sql`` : sql`AND aggregate > ${textCursor(after)}`;
    const rows = await guard(
      'list aggregates by label',
      () => sql<{ aggregate: string }[]>`
      SELECT aggregate FROM timebox_labels
       WHERE prefix = ${this.#prefix} AND label = ${toStoredText(label)} AND value = ${toStoredText(value)} ${afterKey}
       ORDER BY aggregate LIMIT ${limit + 1}`,
    );
    return keysetPage(
      rows,
      limit,
      (row) => row.aggregate,
      (row) => aggregateIdFromKey(row.aggregate),
    );
  }

  /** Distinct values in byte (code point) order, by a loose index scan: one probe per value. */
  async listLabelValues(label: string, { limit, after }: ListRequest): Promise<ListPage<string>> {
    await this.#open('list label values');
    const sql = this.#sql;
    const stored = toStoredText(label);
    const afterValue = after === undefined ? sql`` : sql`AND value > ${textCursor(after)}`;
    const rows = await guard(
      'list label values',
      () => sql<{ value: string }[]>`
      WITH RECURSIVE v AS (
        (SELECT value, 1 AS n FROM timebox_labels
          WHERE prefix = ${this.#prefix} AND label = ${stored} ${afterValue} ORDER BY value LIMIT 1)
        UNION ALL
        SELECT (SELECT l.value FROM timebox_labels l
                 WHERE l.prefix = ${this.#prefix} AND l.label = ${stored} AND l.value > v.value
                 ORDER BY l.value LIMIT 1), v.n + 1
          FROM v WHERE v.value IS NOT NULL AND v.n <= ${limit})
      SELECT value FROM v WHERE value IS NOT NULL`,
    );
    return keysetPage(
      rows,
      limit,
      (row) => row.value,
      (row) => fromStoredText(row.value),
    );
  }

  /**
   * A page of the log, settled: `timebox_read_log` returns events only up to a position below
   * which every transaction that took a position has ended, so no event can later appear at or
   * below the returned `after` (see the README, _Positions and the log_). When appends in flight
   * below the page's end do not finish within about 200 ms, the page is empty with `end` set and
   * `after` unchanged: the caller comes back later (a projection waits for the next append or
   * its polling backstop).
   */
  async readLog({ after, limit, types, prefix }: ReadLogRequest): Promise<LogPage> {
    await this.#open('read the log');
    const from = after[0] ?? 0;
    const typeList = types === undefined ? null : JSON.stringify(types.map(toStoredText));
    const range = prefix === undefined || prefix.length === 0 ? undefined : { exact: aggregateKey(prefix), ...descendantKeyRange(prefix) };
    const window = typeList === null && range === undefined ? limit : Math.max(limit, FILTERED_SCAN_WINDOW);
    const rows = await guard(
      'read the log',
      () => this.#sql<LogRow[]>`
      SELECT settled, upto, more, events FROM timebox_read_log(${this.#prefix}, ${from}, ${limit}, ${window},
        ${typeList}::text::json, ${range?.exact ?? null}, ${range?.low ?? null}, ${range?.high ?? null}, ${SETTLE_WAIT_MS}, false)`,
    );
    const row = onlyRow('read the log', rows);
    if (!row.settled) return { entries: [], after: [from], end: true };
    return { entries: row.events === null ? [] : parseLogEntries(row.events), after: [row.upto], end: !row.more };
  }

  /**
   * The settled head: the prefix's newest position once every append that could still add an
   * event at or below it has ended. Waits (in rounds of about 200 ms, one call each) for appends
   * in flight when it is called to finish.
   */
  async logHead(): Promise<number[]> {
    for (;;) {
      await this.#open('read the log head');
      const rows = await guard(
        'read the log head',
        () => this.#sql<{ settled: boolean; head: number }[]>`
        SELECT settled, head FROM timebox_log_head(${this.#prefix}, ${SETTLE_WAIT_MS})`,
      );
      const { settled, head } = onlyRow('read the log head', rows);
      if (settled) return [head];
    }
  }

  /**
   * The transactional form of `projections.save`, for read models in this database: runs `work`
   * with a transaction and, in the same transaction, the conditional checkpoint save (if `holder`
   * still holds the lease of projection `name` and its generation is still `generation`). The work
   * commits only together with the checkpoint: when the save answers `'lost-lease'` or `'reset'`,
   * the transaction is rolled back and that answer returned; when `work` throws, it is rolled back
   * and the error rethrown. So a read model changed in `work` changes exactly once per checkpoint.
   *
   * `work` must do its database work through the `sql` it is given (awaiting every statement) and
   * must not use it after it resolved. If the connection is lost, the call rejects with a
   * `PostgresBackendError` whose `connectionLost` is true: the work may or may not have committed
   * with its checkpoint (load the projection to see which), and statements `work` makes after the
   * loss are refused without being sent.
   *
   * @throws InvalidArgumentError for a bad name, holder, generation, lease or work.
   */
  async saveProjectionWith(
    name: string,
    holder: string,
    generation: number,
    update: SaveUpdate,
    leaseMs: number,
    work: (sql: TransactionSql) => Promise<void>,
  ): Promise<ProjectionWrite> {
    return this.projections.saveWith(name, holder, generation, update, leaseMs, work);
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

  /** Throws when closed; otherwise makes sure the schema exists before the first statement. */
  async #open(operation: string): Promise<void> {
    this.#assertOpen(operation);
    await (this.#ready ?? this.ready());
  }

  #assertOpen(operation: string): void {
    if (this.#closed) throw new StoreClosedError(operation);
  }
}

function toEventRecord(row: EventRow): StoredEventRecord {
  return { type: fromStoredText(row.type), sequence: row.sequence, timestamp: row.time, data: row.data, position: row.position };
}

/** The page of `limit` rows out of up to `limit + 1` read, continuing after the last row's key. */
function keysetPage<R, T>(rows: readonly R[], limit: number, keyOf: (row: R) => string, item: (row: R) => T): ListPage<T> {
  const items = rows.slice(0, limit).map(item);
  return rows.length > limit ? { items, next: keyOf(rows[limit - 1] as R) } : { items };
}

/** A continuation that is stored text (a key or a label value), which PostgreSQL text can hold. */
function textCursor(after: string): string {
  if (after.includes('\u0000') || hasLoneSurrogate(after)) throw new InvalidCursorError('does not name a place in this list', after);
  return after;
}

/** A status list's continuation: the status time (bigint, as text) and the key. */
function statusCursor(after: string): [string, string] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(after);
  } catch {
    parsed = undefined;
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== 2 ||
    typeof parsed[0] !== 'string' ||
    !/^-?\d{1,19}$/.test(parsed[0]) ||
    typeof parsed[1] !== 'string'
  ) {
    throw new InvalidCursorError('does not name a place in a status list', after);
  }
  return [parsed[0], textCursor(parsed[1])];
}
