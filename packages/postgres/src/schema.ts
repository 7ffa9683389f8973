import type { Sql } from 'postgres';
import { TimeboxError } from '@timebox/core';

/** The schema version this release creates and expects. */
export const SCHEMA_VERSION = 3;

/** The channel on which archive moves are announced; the payload is md5(prefix). */
export const ARCHIVE_CHANNEL = 'timebox_archive';

/** The channel on which appends are announced to subscribers; the payload is md5(prefix). */
export const FEED_CHANNEL = 'timebox_feed';

// Every process opening a store takes this transaction-scoped advisory lock before touching the
// schema, so concurrent opens never race on CREATE (which is not safe to run concurrently even
// with IF NOT EXISTS). The number is arbitrary but fixed across releases.
const SCHEMA_LOCK_KEY = '7310582740362958801';

/**
 * Version 1. Every table is keyed by the store prefix first, so stores share tables safely and
 * every query is an index range scan within one prefix. Key and label columns use the "C"
 * collation, so comparisons are byte-wise: the prefix range of `listAggregates` and the order of
 * label values then follow UTF-8 byte order instead of the server's locale.
 */
const MIGRATION_1 = /* sql */ `
CREATE TABLE IF NOT EXISTS timebox_index (
  prefix        text COLLATE "C" NOT NULL,
  aggregate     text COLLATE "C" NOT NULL,
  next_sequence bigint NOT NULL DEFAULT 0,
  status        text COLLATE "C" NOT NULL DEFAULT '',
  status_time   bigint,
  PRIMARY KEY (prefix, aggregate)
) WITH (fillfactor = 80); -- every append updates its head row: leave room for HOT updates
CREATE INDEX IF NOT EXISTS timebox_index_by_status
  ON timebox_index (prefix, status, status_time, aggregate) WHERE status <> '';

CREATE TABLE IF NOT EXISTS timebox_labels (
  prefix    text COLLATE "C" NOT NULL,
  aggregate text COLLATE "C" NOT NULL,
  label     text COLLATE "C" NOT NULL,
  value     text COLLATE "C" NOT NULL,
  PRIMARY KEY (prefix, aggregate, label)
);
CREATE INDEX IF NOT EXISTS timebox_labels_by_value ON timebox_labels (prefix, label, value, aggregate);

CREATE TABLE IF NOT EXISTS timebox_events (
  prefix    text COLLATE "C" NOT NULL,
  aggregate text COLLATE "C" NOT NULL,
  sequence  bigint NOT NULL,
  type      text NOT NULL,
  time_ms   bigint NOT NULL,
  data      text NOT NULL,
  PRIMARY KEY (prefix, aggregate, sequence)
);

CREATE TABLE IF NOT EXISTS timebox_snapshot (
  prefix    text COLLATE "C" NOT NULL,
  aggregate text COLLATE "C" NOT NULL,
  sequence  bigint NOT NULL,
  data      text NOT NULL,
  PRIMARY KEY (prefix, aggregate)
);

CREATE TABLE IF NOT EXISTS timebox_archive (
  id                bigserial PRIMARY KEY,
  prefix            text COLLATE "C" NOT NULL,
  aggregate         text COLLATE "C" NOT NULL,
  snapshot_sequence bigint NOT NULL,
  snapshot_data     text,
  events            json NOT NULL, -- [[sequence, type, time_ms, data], ...] in sequence order
  leased_until      bigint NOT NULL DEFAULT 0,
  lease             bigint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS timebox_archive_queue ON timebox_archive (prefix, id);

-- Appends a batch if the aggregate's next sequence is p_expected, and applies the folded index
-- change, in one call. The batch is JSON text, [[type, time_ms, data], ...], and the label
-- changes [[label, value], ...] (an empty value removes the label): no array parameter, so the
-- driver needs no array type information (see options.ts). Returns the next sequence found
-- (equal to p_expected on success) and, on a conflict, the events stored from p_expected on as
-- JSON text [[sequence, type, time_ms, data], ...].
CREATE OR REPLACE FUNCTION timebox_append(
  p_prefix text, p_aggregate text, p_expected bigint, p_events json,
  p_status text, p_status_time bigint, p_labels json)
RETURNS TABLE (actual double precision, events text)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_count integer := json_array_length(p_events);
  v_next bigint;
  v_events text;
BEGIN
  LOOP
    IF v_count > 0 THEN
      -- The head row is the aggregate's lock. The sequence check is part of the UPDATE, so a
      -- writer queued behind another re-checks the committed row (no lost update), and the
      -- common case takes one statement. Re-asserting the current status keeps its entry time.
      UPDATE timebox_index i
         SET next_sequence = p_expected + v_count,
             status = CASE WHEN p_status IS NULL OR p_status = i.status THEN i.status ELSE p_status END,
             status_time = CASE WHEN p_status IS NULL OR p_status = i.status THEN i.status_time
                                WHEN p_status = '' THEN NULL ELSE p_status_time END
       WHERE i.prefix = p_prefix AND i.aggregate = p_aggregate AND i.next_sequence = p_expected;
      IF NOT FOUND AND p_expected = 0 THEN
        INSERT INTO timebox_index (prefix, aggregate, next_sequence, status, status_time)
        VALUES (p_prefix, p_aggregate, v_count, coalesce(p_status, ''),
                CASE WHEN coalesce(p_status, '') = '' THEN NULL ELSE p_status_time END)
        ON CONFLICT DO NOTHING;
      END IF;
      IF FOUND THEN
        INSERT INTO timebox_events (prefix, aggregate, sequence, type, time_ms, data)
        SELECT p_prefix, p_aggregate, p_expected + u.ord - 1, u.e->>0, (u.e->>1)::bigint, u.e->>2
          FROM json_array_elements(p_events) WITH ORDINALITY AS u(e, ord);
        IF json_array_length(p_labels) > 0 THEN
          DELETE FROM timebox_labels l
           USING json_array_elements(p_labels) AS u(e)
           WHERE u.e->>1 = '' AND l.prefix = p_prefix AND l.aggregate = p_aggregate AND l.label = u.e->>0;
          INSERT INTO timebox_labels AS l (prefix, aggregate, label, value)
          SELECT p_prefix, p_aggregate, u.e->>0, u.e->>1
            FROM json_array_elements(p_labels) AS u(e)
           WHERE u.e->>1 <> ''
          ON CONFLICT (prefix, aggregate, label) DO UPDATE SET value = EXCLUDED.value WHERE l.value <> EXCLUDED.value;
        END IF;
        RETURN QUERY SELECT p_expected::double precision, NULL::text;
        RETURN;
      END IF;
    END IF;

    -- An empty batch, or a conflict: the head and the events since p_expected, read together.
    SELECT coalesce((SELECT i.next_sequence FROM timebox_index i
                      WHERE i.prefix = p_prefix AND i.aggregate = p_aggregate), 0),
           json_agg(json_build_array(e.sequence, e.type, e.time_ms, e.data) ORDER BY e.sequence)::text
      INTO v_next, v_events
      FROM timebox_events e
     WHERE e.prefix = p_prefix AND e.aggregate = p_aggregate AND e.sequence >= p_expected;
    IF v_next <> p_expected THEN
      RETURN QUERY SELECT v_next::double precision, v_events;
      RETURN;
    END IF;
    IF v_count = 0 THEN
      RETURN QUERY SELECT p_expected::double precision, NULL::text;
      RETURN;
    END IF;
    -- The head moved back to p_expected between the two statements (archived and re-created
    -- by others): try again.
  END LOOP;
END
$fn$;

-- Stores a snapshot if newer than the stored one (trimming covered events when asked), unless
-- p_sequence is beyond the aggregate's next sequence. Returns that next sequence, so the caller
-- can tell a rejected call (p_sequence greater than it) from a stored or ignored one.
CREATE OR REPLACE FUNCTION timebox_save_snapshot(
  p_prefix text, p_aggregate text, p_sequence bigint, p_data text, p_trim boolean)
RETURNS double precision
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_next bigint;
BEGIN
  LOOP
    SELECT i.next_sequence INTO v_next FROM timebox_index i
     WHERE i.prefix = p_prefix AND i.aggregate = p_aggregate FOR UPDATE;
    EXIT WHEN FOUND;
    IF p_sequence > 0 THEN
      RETURN 0;
    END IF;
    INSERT INTO timebox_index (prefix, aggregate) VALUES (p_prefix, p_aggregate) ON CONFLICT DO NOTHING;
  END LOOP;
  IF p_sequence > v_next THEN
    RETURN v_next;
  END IF;
  INSERT INTO timebox_snapshot AS s (prefix, aggregate, sequence, data)
  VALUES (p_prefix, p_aggregate, p_sequence, p_data)
  ON CONFLICT (prefix, aggregate) DO UPDATE SET sequence = EXCLUDED.sequence, data = EXCLUDED.data
   WHERE s.sequence < EXCLUDED.sequence;
  IF FOUND AND p_trim THEN
    DELETE FROM timebox_events e
     WHERE e.prefix = p_prefix AND e.aggregate = p_aggregate AND e.sequence < p_sequence;
  END IF;
  RETURN v_next;
END
$fn$;

-- Moves an aggregate's snapshot and events into one archive row and deletes its live rows,
-- index and labels; announces the new row on the archive channel when the transaction commits.
CREATE OR REPLACE FUNCTION timebox_archive_aggregate(p_prefix text, p_aggregate text)
RETURNS void
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
BEGIN
  PERFORM 1 FROM timebox_index i WHERE i.prefix = p_prefix AND i.aggregate = p_aggregate FOR UPDATE;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  INSERT INTO timebox_archive (prefix, aggregate, snapshot_sequence, snapshot_data, events)
  SELECT p_prefix, p_aggregate, coalesce(s.sequence, 0), s.data, coalesce(e.events, '[]')
    FROM (SELECT json_agg(json_build_array(ev.sequence, ev.type, ev.time_ms, ev.data) ORDER BY ev.sequence) AS events
            FROM timebox_events ev
           WHERE ev.prefix = p_prefix AND ev.aggregate = p_aggregate) e
    LEFT JOIN timebox_snapshot s ON s.prefix = p_prefix AND s.aggregate = p_aggregate;
  DELETE FROM timebox_events e WHERE e.prefix = p_prefix AND e.aggregate = p_aggregate;
  DELETE FROM timebox_snapshot s WHERE s.prefix = p_prefix AND s.aggregate = p_aggregate;
  DELETE FROM timebox_labels l WHERE l.prefix = p_prefix AND l.aggregate = p_aggregate;
  DELETE FROM timebox_index i WHERE i.prefix = p_prefix AND i.aggregate = p_aggregate;
  PERFORM pg_notify('${ARCHIVE_CHANNEL}', md5(p_prefix));
END
$fn$;
`;

/**
 * Version 2: the event feed's tables. Each append writes one `timebox_feed` row (aggregate, first
 * sequence, count; the events stay in `timebox_events`) stamped with its transaction ID (see
 * version 3). Subscribers read rows by transaction ID:
 * a row's `tx` never falls below the reader's snapshot xmin after the reader passed it, so a
 * reader that remembers the xmin of its last read and the rows it delivered above it resumes
 * without loss (see feed-reader.ts). The append that writes them is version 3's.
 */
const MIGRATION_2 = /* sql */ `
CREATE TABLE IF NOT EXISTS timebox_feed (
  prefix         text COLLATE "C" NOT NULL,
  tx             xid8 NOT NULL DEFAULT pg_current_xact_id(),
  id             bigserial,
  aggregate      text COLLATE "C" NOT NULL,
  first_sequence bigint NOT NULL,
  count          integer NOT NULL,
  PRIMARY KEY (prefix, tx, id)
);
-- Rows below pruned_below (by transaction ID) were deleted to keep the feed to its retention.
CREATE TABLE IF NOT EXISTS timebox_feed_horizon (
  prefix       text COLLATE "C" PRIMARY KEY,
  pruned_below xid8 NOT NULL
);
`;

/**
 * Version 3: `timebox_append` with the feed (8 arguments: the version-1 function, which stays for
 * releases still running against this database, plus the feed retention). A successful non-empty
 * append adds its feed row and, while a subscriber holds a lease in `timebox_feed_listener`,
 * notifies FEED_CHANNEL; about every 1000th append prunes the prefix's feed to its newest
 * p_feed_retention rows. Only while someone listens, because a NOTIFY makes PostgreSQL serialize
 * the commits of notifying transactions on one lock: measured to halve append throughput at 64
 * in flight, and worse under load. Feed rows are written always, so a subscriber reads what was
 * appended before it (re)registered.
 */
const MIGRATION_3 = /* sql */ `
CREATE TABLE IF NOT EXISTS timebox_feed_listener (
  prefix     text COLLATE "C" NOT NULL,
  listener   text NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (prefix, listener)
);

CREATE OR REPLACE FUNCTION timebox_append(
  p_prefix text, p_aggregate text, p_expected bigint, p_events json,
  p_status text, p_status_time bigint, p_labels json, p_feed_retention integer)
RETURNS TABLE (actual double precision, events text)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_actual double precision;
  v_events text;
  v_feed_id bigint;
  v_horizon xid8;
BEGIN
  SELECT a.actual, a.events INTO v_actual, v_events
    FROM timebox_append(p_prefix, p_aggregate, p_expected, p_events, p_status, p_status_time, p_labels) a;
  RETURN QUERY SELECT v_actual, v_events;
  -- Published only when the batch was stored: a conflict reports another next sequence.
  IF p_feed_retention <= 0 OR v_actual <> p_expected OR json_array_length(p_events) = 0 THEN RETURN; END IF;
  INSERT INTO timebox_feed (prefix, aggregate, first_sequence, count)
  VALUES (p_prefix, p_aggregate, p_expected, json_array_length(p_events))
  RETURNING id INTO v_feed_id;
  IF EXISTS (SELECT 1 FROM timebox_feed_listener l WHERE l.prefix = p_prefix AND l.expires_at > now()) THEN
    PERFORM pg_notify('${FEED_CHANNEL}', md5(p_prefix));
  END IF;
  IF v_feed_id % 1000 = 0 THEN
    SELECT f.tx INTO v_horizon FROM timebox_feed f WHERE f.prefix = p_prefix
     ORDER BY f.tx DESC, f.id DESC OFFSET p_feed_retention LIMIT 1;
    IF v_horizon IS NOT NULL THEN
      DELETE FROM timebox_feed f WHERE f.prefix = p_prefix AND f.tx < v_horizon;
      INSERT INTO timebox_feed_horizon AS h (prefix, pruned_below) VALUES (p_prefix, v_horizon)
      ON CONFLICT (prefix) DO UPDATE SET pruned_below = greatest(h.pruned_below, EXCLUDED.pruned_below);
    END IF;
    DELETE FROM timebox_feed_listener l WHERE l.prefix = p_prefix AND l.expires_at < now() - interval '1 hour';
  END IF;
END
$fn$;
`;

/** Migrations by the version they produce; each runs in the schema transaction. */
const MIGRATIONS: readonly string[] = [MIGRATION_1, MIGRATION_2, MIGRATION_3];

// The SQLSTATE the schema script raises when the database is newer than this release.
const TOO_NEW_SQLSTATE = 'TBX01';

/**
 * The whole schema step as one script: the version check and every migration run in one PL/pgSQL
 * block, so the step is a single statement. It is sent by itself with the simple protocol, which
 * runs a multi-statement string as one implicit transaction that the server rolls back by itself
 * on any error. (Not `sql.begin`: when the connection dies mid-transaction, postgres.js 3.4 sends
 * its ROLLBACK on the dead connection and throws an uncaught TypeError from a timer, crashing the
 * process.)
 */
function schemaScript(): string {
  const steps = MIGRATIONS.map((ddl, i) => `  IF stored < ${i + 1} THEN\n${ddl}\n  END IF;`).join('\n');
  return `
SET LOCAL client_min_messages = warning;
SELECT pg_advisory_xact_lock(${SCHEMA_LOCK_KEY});
CREATE TABLE IF NOT EXISTS timebox_schema_version (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  version integer NOT NULL);
DO $timebox_schema$
DECLARE
  stored integer := coalesce((SELECT version FROM timebox_schema_version), 0);
BEGIN
  IF stored > ${SCHEMA_VERSION} THEN
    RAISE EXCEPTION USING ERRCODE = '${TOO_NEW_SQLSTATE}', MESSAGE = stored::text;
  END IF;
${steps}
  IF stored < ${SCHEMA_VERSION} THEN
    INSERT INTO timebox_schema_version (singleton, version) VALUES (true, ${SCHEMA_VERSION})
    ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version;
  END IF;
END
$timebox_schema$;`;
}

/** The database holds a schema newer than this release understands. */
export class SchemaVersionError extends TimeboxError {
  constructor(
    readonly found: number,
    readonly supported: number,
  ) {
    super(
      'POSTGRES_SCHEMA_TOO_NEW',
      `the timebox tables are at schema version ${found}, but this @timebox/postgres release supports up to ${supported}: upgrade the package`,
    );
  }
}

/**
 * Creates or migrates the schema, idempotently. Concurrent callers (in one process or many)
 * serialize on an advisory lock, and the migrations commit together with the version they
 * produce, so a crash half-way leaves the previous version intact.
 */
export async function ensureSchema(sql: Sql): Promise<void> {
  try {
    // Constant DDL written above, no caller input; no parameters, so the simple protocol.
    await sql.unsafe(schemaScript());
  } catch (error) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (code === TOO_NEW_SQLSTATE) throw new SchemaVersionError(Number(message), SCHEMA_VERSION);
    throw error;
  }
}
