import type { Sql, TransactionSql } from 'postgres';
import { replyRow, replyRows } from './errors.js';

/** One append as the backend sends it: every text already made storable (see `toStoredText`). */
export interface StoredAppend {
  readonly prefix: string;
  /** The aggregate's key (see `aggregateKey`). */
  readonly aggregate: string;
  readonly expected: number;
  /** `[type, time_ms, data]` per event, in order; at least one. */
  readonly events: readonly (readonly [string, number, string])[];
  /** The status to set (`''` clears it), or null to leave it. */
  readonly status: string | null;
  /** The status time (epoch ms), used when the status changes. */
  readonly statusTime: number | null;
  /** `[label, value]` changes; an empty value removes the label. */
  readonly labels: readonly (readonly [string, string])[];
}

/** What one attempt of `appendStatement` found. */
export interface AppendAttempt {
  /** The positions given to the events, in order; null when the head was not at `expected`. */
  readonly positions: number[] | null;
  /** A subscriber holds a lease on the prefix: announce the commit (see `FeedNotifier`). */
  readonly notify: boolean;
}

/** The head and the events from `expected` on, as a conflict reports them. */
export interface HeadRead {
  readonly next: number;
  /** JSON text, see `parseEventList`; null when there are none. */
  readonly events: string | null;
}

/**
 * Appends a non-empty batch if the aggregate's next sequence is `expected`: the head row, the
 * events, the label changes and the subscriber check in **one statement**, no server function.
 * A plain statement costs the server far less than a PL/pgSQL call doing the same writes (every
 * function call, and every statement inside it, has a fixed cost paid on each append), and the
 * statement's text depends only on its shape (first append or not, one event or many, labels or
 * none), so postgres.js prepares each shape once per connection.
 *
 * The head row is the aggregate's lock, and the sequence check is part of its write: a writer
 * queued behind another re-checks the committed row (no lost update), and when the check fails
 * nothing is written (`positions` null; `readHead` then tells a conflict from a head that moved
 * to `expected` meanwhile). Re-asserting the current status keeps its entry time. A tombstone (an
 * archived life) has a next sequence one past that life's, so an append at the new life's start
 * revives it. At 0 the row is usually new: an upsert, instead of an UPDATE that finds nothing.
 *
 * Every other write waits for the head's: the events are inserted for the row the head write
 * returns, and the labels are written only if it returned one. So the head write gives the
 * transaction its ID before the event insert takes positions (the column default):
 * `timebox_read_log` depends on that order, and test/log-settle.test.ts checks it.
 */
export async function appendStatement(sql: Sql | TransactionSql, append: StoredAppend): Promise<AppendAttempt> {
  const { prefix, aggregate, expected, events, status, statusTime, labels } = append;
  const only = events.length === 1 ? events[0] : undefined;
  const shape: Shape = { first: expected === 0, single: only !== undefined, status: status !== null, labels: labels.length > 0 };
  // The parameters in the order `statementText` numbers them.
  const params: (string | number | null)[] = [prefix, aggregate, expected, expected + events.length];
  if (status !== null) params.push(status, statusTime);
  if (only !== undefined) params.push(...only);
  else params.push(JSON.stringify(events));
  if (labels.length > 0) params.push(JSON.stringify(labels));
  const rows = await sql.unsafe<{ positions: string | number | null; notify: boolean }[]>(statementText(shape), params, { prepare: true });
  const { positions, notify } = replyRow(rows);
  if (positions === null) return { positions: null, notify: false };
  return { positions: typeof positions === 'number' ? [positions] : (JSON.parse(positions) as number[]), notify };
}

/** What the statement's text depends on. */
interface Shape {
  /** The expected sequence is 0 (an upsert of the head row, else an update). */
  readonly first: boolean;
  /** One event (bound as plain parameters, else a JSON batch). */
  readonly single: boolean;
  /** The batch sets a status (else the status columns are left alone). */
  readonly status: boolean;
  /** The batch changes labels. */
  readonly labels: boolean;
}

const statementTexts = new Map<string, string>();

/**
 * The statement for one shape, built once. Parameters: $1 prefix, $2 aggregate, $3 expected,
 * $4 next sequence, then the status and its time (with a status), then the event's type, time and
 * data (one event) or the batch as JSON text, then the label changes as JSON text (with labels).
 * Every use names its type: the driver sends numbers and strings untyped.
 */
function statementText(shape: Shape): string {
  const key = `${+shape.first}${+shape.single}${+shape.status}${+shape.labels}`;
  let text = statementTexts.get(key);
  if (text !== undefined) return text;
  let n = 4;
  const next = () => `$${++n}`;
  let insertStatus = '';
  let setStatus = '';
  if (shape.status) {
    const status = `${next()}::text`;
    const time = `${next()}::bigint`;
    insertStatus = `, status, status_time) VALUES ($1::text, $2::text, $4::bigint, ${status}, CASE WHEN ${status} = '' THEN NULL ELSE ${time} END)`;
    // Re-asserting the current status keeps its entry time.
    setStatus = `, status = ${status},
               status_time = CASE WHEN ${status} = i.status THEN i.status_time WHEN ${status} = '' THEN NULL ELSE ${time} END`;
  }
  const head = shape.first
    ? `INSERT INTO timebox_index AS i (prefix, aggregate, next_sequence${insertStatus || ') VALUES ($1::text, $2::text, $4::bigint)'}
         ON CONFLICT (prefix, aggregate) DO UPDATE SET next_sequence = $4::bigint, live = true${setStatus}
          WHERE i.next_sequence = 0
         RETURNING i.prefix, i.aggregate`
    : `UPDATE timebox_index i SET next_sequence = $4::bigint, live = true${setStatus}
          WHERE i.prefix = $1::text AND i.aggregate = $2::text AND i.next_sequence = $3::bigint
         RETURNING i.prefix, i.aggregate`;
  // The events are inserted for each row the head write returned: none when the check failed.
  const stored = shape.single
    ? `INSERT INTO timebox_events (prefix, aggregate, sequence, type, time_ms, data)
       SELECT h.prefix, h.aggregate, $3::bigint, ${next()}::text, ${next()}::bigint, ${next()}::text FROM head h
       RETURNING position`
    : `INSERT INTO timebox_events (prefix, aggregate, sequence, type, time_ms, data)
       SELECT h.prefix, h.aggregate, $3::bigint + u.ord - 1, u.e->>0, (u.e->>1)::bigint, u.e->>2
         FROM head h, json_array_elements(${next()}::text::json) WITH ORDINALITY AS u(e, ord)
        ORDER BY u.ord
       RETURNING sequence, position`;
  let labelWrites = '';
  if (shape.labels) {
    const labels = `${next()}::text::json`;
    labelWrites = `,
    dropped AS (
      DELETE FROM timebox_labels l USING json_array_elements(${labels}) AS u(e)
       WHERE EXISTS (SELECT 1 FROM head) AND u.e->>1 = ''
         AND l.prefix = $1::text AND l.aggregate = $2::text AND l.label = u.e->>0),
    labelled AS (
      INSERT INTO timebox_labels AS l (prefix, aggregate, label, value)
      SELECT $1::text, $2::text, u.e->>0, u.e->>1 FROM json_array_elements(${labels}) AS u(e)
       WHERE EXISTS (SELECT 1 FROM head) AND u.e->>1 <> ''
      ON CONFLICT (prefix, aggregate, label) DO UPDATE SET value = EXCLUDED.value WHERE l.value <> EXCLUDED.value)`;
  }
  // One event: its position as a number; a batch: the positions as JSON text, in sequence order;
  // null when nothing was written. Always one row: none means the reply was lost (postgres.js
  // can resolve a query cut off by a lost connection with no rows).
  const positions = shape.single
    ? '(SELECT s.position::float8 FROM stored s)'
    : '(SELECT json_agg(s.position ORDER BY s.sequence)::text FROM stored s)';
  text = `WITH head AS (${head}),
    stored AS (${stored})${labelWrites}
    SELECT ${positions} AS positions,
           EXISTS (SELECT 1 FROM timebox_feed_listener f WHERE f.prefix = $1::text AND f.expires_at > now()) AS notify`;
  statementTexts.set(key, text);
  return text;
}

/**
 * The aggregate's next sequence and its events from `expected` on, read in one statement: what
 * an append at `expected` that wrote nothing reports as a conflict (or retries, when the head is
 * at `expected` after all: an append it could not see yet had committed meanwhile).
 */
export async function readHead(sql: Sql, prefix: string, aggregate: string, expected: number): Promise<HeadRead> {
  const rows = await sql<{ next: number; events: string | null }[]>`
    SELECT coalesce((SELECT i.next_sequence FROM timebox_index i WHERE i.prefix = ${prefix} AND i.aggregate = ${aggregate}), 0)::float8 AS next,
           (SELECT json_agg(json_build_array(e.sequence, e.type, e.time_ms, e.data, e.position) ORDER BY e.sequence)::text
              FROM timebox_events e
             WHERE e.prefix = ${prefix} AND e.aggregate = ${aggregate} AND e.sequence >= ${expected}::bigint) AS events`;
  return replyRow(rows);
}

/**
 * The statement of `appendBatchStatement`. $1 is the prefix, $2 a JSON array with, per append,
 * `[aggregate, expected, next, status or null, status time or null, [[type, time_ms, data]...],
 * [[label, value]...]]`, its aggregates distinct. Each append keeps its own sequence check exactly
 * as in `appendStatement` (an upsert at 0, else an update on the expected sequence), and only the
 * appends whose check passed write events and labels. The event insert is sorted, so every head
 * write has given the transaction its ID before the first position is taken (see
 * `appendStatement`), and the positions follow the batch's order.
 */
const BATCH_STATEMENT = `WITH input AS (
    SELECT u.ord, u.a->>0 AS aggregate, (u.a->>1)::bigint AS expected, (u.a->>2)::bigint AS next,
           u.a->>3 AS status, (u.a->>4)::bigint AS status_time, u.a->5 AS events, u.a->6 AS labels
      FROM json_array_elements($2::text::json) WITH ORDINALITY AS u(a, ord)),
  first AS (
    INSERT INTO timebox_index AS i (prefix, aggregate, next_sequence, status, status_time)
    SELECT $1::text, u.aggregate, u.next, coalesce(u.status, ''),
           CASE WHEN coalesce(u.status, '') = '' THEN NULL ELSE u.status_time END
      FROM input u WHERE u.expected = 0 ORDER BY u.ord
    ON CONFLICT (prefix, aggregate) DO UPDATE SET next_sequence = EXCLUDED.next_sequence, live = true,
       status = CASE WHEN (SELECT u.status IS NULL FROM input u WHERE u.aggregate = EXCLUDED.aggregate)
                     THEN i.status ELSE EXCLUDED.status END,
       status_time = CASE WHEN (SELECT u.status IS NULL FROM input u WHERE u.aggregate = EXCLUDED.aggregate)
                            OR EXCLUDED.status = i.status THEN i.status_time ELSE EXCLUDED.status_time END
     WHERE i.next_sequence = 0
    RETURNING i.aggregate),
  later AS (
    UPDATE timebox_index i SET next_sequence = u.next, live = true,
           status = coalesce(u.status, i.status),
           status_time = CASE WHEN u.status IS NULL OR u.status = i.status THEN i.status_time
                              WHEN u.status = '' THEN NULL ELSE u.status_time END
      FROM input u
     WHERE u.expected > 0 AND i.prefix = $1::text AND i.aggregate = u.aggregate AND i.next_sequence = u.expected
    RETURNING i.aggregate),
  heads AS (SELECT aggregate FROM first UNION ALL SELECT aggregate FROM later),
  stored AS (
    INSERT INTO timebox_events (prefix, aggregate, sequence, type, time_ms, data)
    SELECT $1::text, u.aggregate, u.expected + x.ord - 1, x.e->>0, (x.e->>1)::bigint, x.e->>2
      FROM input u JOIN heads h ON h.aggregate = u.aggregate,
           json_array_elements(u.events) WITH ORDINALITY AS x(e, ord)
     ORDER BY u.ord, x.ord
    RETURNING aggregate, sequence, position),
  dropped AS (
    DELETE FROM timebox_labels l
     USING input u JOIN heads h ON h.aggregate = u.aggregate, json_array_elements(u.labels) AS x(e)
     WHERE x.e->>1 = '' AND l.prefix = $1::text AND l.aggregate = u.aggregate AND l.label = x.e->>0),
  labelled AS (
    INSERT INTO timebox_labels AS l (prefix, aggregate, label, value)
    SELECT $1::text, u.aggregate, x.e->>0, x.e->>1
      FROM input u JOIN heads h ON h.aggregate = u.aggregate, json_array_elements(u.labels) AS x(e)
     WHERE x.e->>1 <> ''
    ON CONFLICT (prefix, aggregate, label) DO UPDATE SET value = EXCLUDED.value WHERE l.value <> EXCLUDED.value)
  SELECT u.ord::int AS ord,
         (SELECT json_agg(s.position ORDER BY s.sequence) FROM stored s WHERE s.aggregate = u.aggregate)::text AS positions,
         EXISTS (SELECT 1 FROM timebox_feed_listener f WHERE f.prefix = $1::text AND f.expires_at > now()) AS notify
    FROM input u ORDER BY u.ord`;

/**
 * Several appends of one prefix, to distinct aggregates, in **one statement** (one round trip,
 * one commit): what `appendStatement` does for each, with each append's own outcome. The batch
 * commits or fails as a whole; a failure says nothing about which append caused it (see
 * `AppendBatcher`, which then sends each alone).
 */
export async function appendBatchStatement(sql: Sql, appends: readonly StoredAppend[]): Promise<AppendAttempt[]> {
  const prefix = (appends[0] as StoredAppend).prefix;
  const input = JSON.stringify(
    appends.map((append) => [
      append.aggregate,
      append.expected,
      append.expected + append.events.length,
      append.status,
      append.statusTime,
      append.events,
      append.labels,
    ]),
  );
  const rows = await sql.unsafe<{ ord: number; positions: string | null; notify: boolean }[]>(BATCH_STATEMENT, [prefix, input], {
    prepare: true,
  });
  return replyRows(rows, appends.length).map(({ positions, notify }) =>
    positions === null ? { positions: null, notify: false } : { positions: JSON.parse(positions) as number[], notify },
  );
}
