import type { Sql } from 'postgres';
import { TimeboxError } from '@timebox/core';

/** The schema version this release creates and expects. */
export const SCHEMA_VERSION = 2;

/** The channel on which archive moves are announced; the payload is md5(prefix). */
export const ARCHIVE_CHANNEL = 'timebox_archive';

/** The channel on which appends are announced to subscribers; the payload is md5(prefix). */
export const FEED_CHANNEL = 'timebox_feed';

/**
 * How long (ms) one log read waits server-side for appends in flight below the page's end before
 * it answers with what is settled (nothing new) and lets the caller come back.
 */
export const SETTLE_WAIT_MS = 200;

/** The SQLSTATE the log reader raises when the transaction is not READ COMMITTED. */
export const READ_COMMITTED_SQLSTATE = 'TBX02';

// Every process opening a store takes this transaction-scoped advisory lock before touching the
// schema, so concurrent opens never race on CREATE (which is not safe to run concurrently even
// with IF NOT EXISTS). The number is arbitrary but fixed across releases.
const SCHEMA_LOCK_KEY = '7310582740362958801';

/**
 * Version 1, the whole schema.
 *
 * - **Tables.** Every table is keyed by the store prefix first, so stores share tables safely and
 *   every query is an index range scan within one prefix. Key and label columns use the "C"
 *   collation, so comparisons are byte-wise: the prefix range of `listAggregates` and the order of
 *   label values then follow UTF-8 byte order instead of the server's locale.
 * - **Positions.** `timebox_events.position`, filled by its default from `timebox_position_seq` and
 *   indexed by (prefix, position); the log reader `timebox_read_log` and `timebox_log_head` return
 *   only the settled part of the log (see the comment at `timebox_read_log`).
 * - **One life per ID.** Archiving keeps the head row as a tombstone (see `timebox_index`).
 * - **The event feed.** Each append writes one `timebox_feed` row (aggregate, first sequence,
 *   count; the events stay in `timebox_events`) stamped with its transaction ID. A row's `tx` never
 *   falls below a reader's snapshot xmin after the reader passed it, so a reader that remembers the
 *   xmin of its last read and the rows it delivered above it resumes without loss (see
 *   feed-reader.ts). Feed rows are written always, so a subscriber reads what was appended before
 *   it (re)registered. Appends never NOTIFY inside their transaction: a NOTIFY makes PostgreSQL
 *   take one database-wide lock at commit and hold it through the commit's WAL flush, so notifying
 *   appends would commit one at a time (measured: a live subscriber cost 55% of the append
 *   throughput at 64 in flight). `timebox_append` answers whether a subscriber holds a lease in
 *   `timebox_feed_listener`, and the appending process then announces its commits itself,
 *   coalesced, from a transaction of its own that does not wait for a flush (feed-notifier.ts).
 * - **Projections.** `timebox_projection`: checkpoint, lease (server clock) and generation per name.
 */
const VERSION_1 = /* sql */ `
CREATE TABLE IF NOT EXISTS timebox_index (
  prefix        text COLLATE "C" NOT NULL,
  aggregate     text COLLATE "C" NOT NULL,
  next_sequence bigint NOT NULL DEFAULT 0,
  status        text COLLATE "C" NOT NULL DEFAULT '',
  status_time   bigint,
  -- An archived life leaves its head row as a tombstone (live false) whose next_sequence and
  -- life_start are one past the archived life's next sequence, so the ID's next life starts there.
  life_start    bigint NOT NULL DEFAULT 0,
  live          boolean NOT NULL DEFAULT true,
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

-- Positions come from one global sequence shared by every prefix (a prefix's positions have
-- gaps). It must not be cached (CACHE 1): timebox_read_log relies on values being handed out in
-- one global order.
CREATE SEQUENCE IF NOT EXISTS timebox_position_seq AS bigint MINVALUE 1 CACHE 1 NO CYCLE;
CREATE TABLE IF NOT EXISTS timebox_events (
  prefix    text COLLATE "C" NOT NULL,
  aggregate text COLLATE "C" NOT NULL,
  sequence  bigint NOT NULL,
  type      text NOT NULL,
  time_ms   bigint NOT NULL,
  data      text NOT NULL,
  position  bigint NOT NULL DEFAULT nextval('timebox_position_seq'),
  PRIMARY KEY (prefix, aggregate, sequence)
);
ALTER SEQUENCE timebox_position_seq OWNED BY timebox_events.position;
CREATE INDEX IF NOT EXISTS timebox_events_by_position ON timebox_events (prefix, position);

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
  events            json NOT NULL, -- [[sequence, type, time_ms, data, position], ...] in sequence order
  leased_until      bigint NOT NULL DEFAULT 0,
  lease             bigint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS timebox_archive_queue ON timebox_archive (prefix, id);

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
-- Subscribers holding a lease; appends are announced on FEED_CHANNEL only while one does.
CREATE TABLE IF NOT EXISTS timebox_feed_listener (
  prefix     text COLLATE "C" NOT NULL,
  listener   text NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (prefix, listener)
);

CREATE TABLE IF NOT EXISTS timebox_projection (
  prefix      text COLLATE "C" NOT NULL,
  name        text COLLATE "C" NOT NULL,
  checkpoint  text,
  holder      text,
  lease_until timestamptz,
  generation  bigint NOT NULL DEFAULT 0,
  last_error  text,
  PRIMARY KEY (prefix, name)
);

-- Appends a batch if the aggregate's next sequence is p_expected, applies the folded index change
-- and writes the feed row, in one call. The batch is JSON text, [[type, time_ms, data], ...], and
-- the label changes [[label, value], ...] (an empty value removes the label): no array parameter,
-- so the driver needs no array type information (see options.ts). Returns the next sequence found
-- (equal to p_expected on success); on success the positions given to the events (JSON text
-- [position, ...]); on a conflict the events stored from p_expected on (JSON text
-- [[sequence, type, time_ms, data, position], ...]).
--
-- The head row write comes first, and gives the transaction its ID, before the event insert takes
-- positions (the column default): timebox_read_log depends on that order. A successful non-empty
-- append adds its feed row and answers notify = true while a subscriber holds a lease in
-- timebox_feed_listener: the caller then announces the append on the feed channel after the commit
-- (see feed-notifier.ts), never from this transaction. About every 1000th append prunes the
-- prefix's feed to its newest p_feed_retention rows (0: no feed rows at all).
CREATE OR REPLACE FUNCTION timebox_append(
  p_prefix text, p_aggregate text, p_expected bigint, p_events json,
  p_status text, p_status_time bigint, p_labels json, p_feed_retention integer)
RETURNS TABLE (actual double precision, events text, positions text, notify boolean)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_count integer := json_array_length(p_events);
  v_next bigint;
  v_events text;
  v_positions text;
  v_feed_id bigint;
  v_notify boolean;
  v_horizon xid8;
BEGIN
  LOOP
    IF v_count > 0 THEN
      -- The head row is the aggregate's lock. The sequence check is part of the write, so a
      -- writer queued behind another re-checks the committed row (no lost update). Re-asserting
      -- the current status keeps its entry time. A tombstone (an archived life) has next_sequence
      -- one past that life's: an append at the new life's start revives it. At 0 the row is
      -- usually new: one upsert, instead of an UPDATE that finds nothing and then an INSERT.
      IF p_expected = 0 THEN
        INSERT INTO timebox_index AS i (prefix, aggregate, next_sequence, status, status_time)
        VALUES (p_prefix, p_aggregate, v_count, coalesce(p_status, ''),
                CASE WHEN coalesce(p_status, '') = '' THEN NULL ELSE p_status_time END)
        ON CONFLICT (prefix, aggregate) DO UPDATE
           SET next_sequence = v_count,
               live = true,
               status = CASE WHEN p_status IS NULL OR p_status = i.status THEN i.status ELSE p_status END,
               status_time = CASE WHEN p_status IS NULL OR p_status = i.status THEN i.status_time
                                  WHEN p_status = '' THEN NULL ELSE p_status_time END
         WHERE i.next_sequence = 0;
      ELSE
        UPDATE timebox_index i
           SET next_sequence = p_expected + v_count,
               live = true,
               status = CASE WHEN p_status IS NULL OR p_status = i.status THEN i.status ELSE p_status END,
               status_time = CASE WHEN p_status IS NULL OR p_status = i.status THEN i.status_time
                                  WHEN p_status = '' THEN NULL ELSE p_status_time END
         WHERE i.prefix = p_prefix AND i.aggregate = p_aggregate AND i.next_sequence = p_expected;
      END IF;
      IF FOUND THEN
        -- The events, the feed row and the listener check in one statement (each statement of a
        -- function has a fixed cost, paid on every append).
        WITH stored AS (
          INSERT INTO timebox_events (prefix, aggregate, sequence, type, time_ms, data)
          SELECT p_prefix, p_aggregate, p_expected + u.ord - 1, u.e->>0, (u.e->>1)::bigint, u.e->>2
            FROM json_array_elements(p_events) WITH ORDINALITY AS u(e, ord)
           ORDER BY u.ord
          RETURNING sequence, position),
        feed AS (
          INSERT INTO timebox_feed (prefix, aggregate, first_sequence, count)
          SELECT p_prefix, p_aggregate, p_expected, v_count WHERE p_feed_retention > 0
          RETURNING id)
        SELECT (SELECT json_agg(s.position ORDER BY s.sequence)::text FROM stored s),
               (SELECT f.id FROM feed f),
               p_feed_retention > 0
                 AND EXISTS (SELECT 1 FROM timebox_feed_listener l WHERE l.prefix = p_prefix AND l.expires_at > now())
          INTO v_positions, v_feed_id, v_notify;
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
        RETURN QUERY SELECT p_expected::double precision, NULL::text, v_positions, v_notify;
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
        RETURN;
      END IF;
    END IF;

    -- An empty batch, or a conflict: the head and the events since p_expected, read together.
    SELECT coalesce((SELECT i.next_sequence FROM timebox_index i
                      WHERE i.prefix = p_prefix AND i.aggregate = p_aggregate), 0),
           json_agg(json_build_array(e.sequence, e.type, e.time_ms, e.data, e.position) ORDER BY e.sequence)::text
      INTO v_next, v_events
      FROM timebox_events e
     WHERE e.prefix = p_prefix AND e.aggregate = p_aggregate AND e.sequence >= p_expected;
    IF v_next <> p_expected THEN
      RETURN QUERY SELECT v_next::double precision, v_events, NULL::text, false;
      RETURN;
    END IF;
    IF v_count = 0 THEN
      RETURN QUERY SELECT p_expected::double precision, NULL::text, '[]'::text, false;
      RETURN;
    END IF;
    -- The head reached p_expected between the two statements (the writer it waited for had
    -- committed): try again.
  END LOOP;
END
$fn$;

-- Stores a snapshot if newer than the stored one (trimming covered events when asked), unless
-- p_sequence is beyond the aggregate's next sequence. Returns that next sequence, so the caller
-- can tell a rejected call (p_sequence greater than it) from a stored or ignored one. A snapshot
-- at or below the start of a later life is ignored: it cannot belong to this life.
CREATE OR REPLACE FUNCTION timebox_save_snapshot(
  p_prefix text, p_aggregate text, p_sequence bigint, p_data text, p_trim boolean)
RETURNS double precision
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_next bigint;
  v_life bigint;
BEGIN
  LOOP
    SELECT i.next_sequence, i.life_start INTO v_next, v_life FROM timebox_index i
     WHERE i.prefix = p_prefix AND i.aggregate = p_aggregate FOR UPDATE;
    EXIT WHEN FOUND;
    IF p_sequence > 0 THEN
      RETURN 0;
    END IF;
    INSERT INTO timebox_index (prefix, aggregate) VALUES (p_prefix, p_aggregate) ON CONFLICT DO NOTHING;
  END LOOP;
  IF p_sequence > v_next OR (v_life > 0 AND p_sequence <= v_life) THEN
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

-- Moves a live aggregate's snapshot and events into one archive row and deletes its live rows and
-- labels; keeps the head row as a tombstone whose next life starts one past this life's next
-- sequence. Announces the new row on the archive channel when the transaction commits. An ID with
-- no live data (unknown, or archived with no new life) archives nothing.
CREATE OR REPLACE FUNCTION timebox_archive_aggregate(p_prefix text, p_aggregate text)
RETURNS void
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_next bigint;
BEGIN
  SELECT i.next_sequence INTO v_next FROM timebox_index i
   WHERE i.prefix = p_prefix AND i.aggregate = p_aggregate AND i.live FOR UPDATE;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  INSERT INTO timebox_archive (prefix, aggregate, snapshot_sequence, snapshot_data, events)
  SELECT p_prefix, p_aggregate, coalesce(s.sequence, 0), s.data, coalesce(e.events, '[]')
    FROM (SELECT json_agg(json_build_array(ev.sequence, ev.type, ev.time_ms, ev.data, ev.position) ORDER BY ev.sequence) AS events
            FROM timebox_events ev
           WHERE ev.prefix = p_prefix AND ev.aggregate = p_aggregate) e
    LEFT JOIN timebox_snapshot s ON s.prefix = p_prefix AND s.aggregate = p_aggregate;
  DELETE FROM timebox_events e WHERE e.prefix = p_prefix AND e.aggregate = p_aggregate;
  DELETE FROM timebox_snapshot s WHERE s.prefix = p_prefix AND s.aggregate = p_aggregate;
  DELETE FROM timebox_labels l WHERE l.prefix = p_prefix AND l.aggregate = p_aggregate;
  UPDATE timebox_index i
     SET next_sequence = v_next + 1, life_start = v_next + 1, live = false, status = '', status_time = NULL
   WHERE i.prefix = p_prefix AND i.aggregate = p_aggregate;
  PERFORM pg_notify('${ARCHIVE_CHANNEL}', md5(p_prefix));
END
$fn$;

-- The transactions that may still be writing events: those holding the write lock every insert
-- into timebox_events takes when its statement starts (before the column default takes a position)
-- and keeps to its end, as full transaction IDs. Read from the lock table, which, unlike a snapshot,
-- also shows transactions whose IDs are at or above the snapshot's xmax (see timebox_read_log).
-- The 32-bit IDs are widened against the current snapshot's xmax (running IDs lie within 2^31 of it).
CREATE OR REPLACE FUNCTION timebox_log_writers()
RETURNS xid8[]
LANGUAGE sql VOLATILE AS $fn$
  WITH l AS MATERIALIZED (
    SELECT locktype, relation, database, virtualtransaction, transactionid, pid FROM pg_locks
     WHERE granted AND ((locktype = 'relation' AND mode = 'RowExclusiveLock')
                        OR (locktype = 'transactionid' AND mode = 'ExclusiveLock'))),
  ref AS (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS r)
  SELECT coalesce(array_agg(DISTINCT (ref.r + ((t.transactionid::text::bigint - ref.r % 4294967296 + 6442450944)
                                               % 4294967296 - 2147483648))::text::xid8), '{}')
    FROM l w
    JOIN l t ON t.virtualtransaction = w.virtualtransaction AND t.locktype = 'transactionid'
   CROSS JOIN ref
   WHERE w.locktype = 'relation' AND w.relation = 'timebox_events'::regclass
     AND w.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
     AND w.pid IS DISTINCT FROM pg_backend_pid()
$fn$;

-- Waits (sleeping in small steps, at most about p_wait_ms) until every transaction of p_writers
-- has ended, as seen by a new snapshot; answers whether they all did. Each statement of a plpgsql
-- function takes a new snapshot under READ COMMITTED, and pg_current_snapshot() is that
-- statement's snapshot (test/log-settle.test.ts checks both). The steps grow 1, 2, 4 ms and stay
-- at 5 ms: the writers found are mostly appends a few milliseconds from their commit, and every
-- millisecond a step oversleeps their end is added to the read (and to a live projection's lag);
-- a check is one snapshot and a scan of p_writers, taking no lock, so checking often costs little.
CREATE OR REPLACE FUNCTION timebox_log_settle(p_writers xid8[], p_wait_ms integer)
RETURNS boolean
LANGUAGE plpgsql AS $fn$
DECLARE
  v_waited double precision := 0;
  v_step double precision := 0.001;
BEGIN
  LOOP
    IF NOT EXISTS (SELECT 1 FROM unnest(p_writers) AS w(x) WHERE NOT pg_visible_in_snapshot(w.x, pg_current_snapshot())) THEN
      RETURN true;
    END IF;
    IF v_waited * 1000 >= p_wait_ms THEN
      RETURN false;
    END IF;
    PERFORM pg_sleep(v_step);
    v_waited := v_waited + v_step;
    v_step := least(v_step * 2, 0.005);
  END LOOP;
END
$fn$;

-- A page of a prefix's log: the events with positions above p_after (of the types in the JSON
-- array p_types, when given, and of aggregates whose key is p_exact or lies in [p_low, p_high),
-- when p_exact is given), in position order, at most p_limit, looking at no more than p_window
-- events of the prefix to find them. Only the settled part of the log is returned.
--
-- Why positions can be passed over, and how this avoids it. Positions come from one sequence, but
-- transactions commit in another order: T_b takes 5, T_a takes 6 and commits first; a reader that
-- saw 6 and moved its checkpoint past it would never see 5. So:
--  1. One statement (snapshot S) finds m, the position the page can reach: the p_limit-th match,
--     else the last event in the window.
--  2. Every position q <= m was handed out before m (the sequence is global and not cached), so
--     before m's transaction committed, so before S. The transaction T_q that took q had by then
--     its transaction ID (timebox_append writes the head row first) and the write lock on
--     timebox_events (taken when its insert started), and it holds the lock until it has ended
--     (PostgreSQL releases locks only after the end is visible to new snapshots). So a look at
--     the lock table after S (timebox_log_writers) finds T_q there, or T_q had already ended.
--     timebox_log_settle then waits until every transaction found there has ended as seen by a
--     new snapshot (bounded; if some have not, nothing is returned, and the caller comes back).
--  3. Then every transaction that ever takes a position <= m has ended, and a new statement
--     (snapshot taken after the check) reads (p_after, m]: that set is final; no event can appear
--     in it later. The page is its first p_limit matches; upto is the last of them when it was
--     cut short, else m (the events it skipped up to m did not match).
-- The snapshot of step 1 alone cannot say this: its xip list omits transactions whose IDs are at or
-- above its xmax (latest completed ID + 1), and T_q can be one (it took its ID after T_a's and its
-- position before T_a's); and pg_xact_status reports 'committed' a moment before the commit is
-- visible to new snapshots. Hence the lock table and pg_visible_in_snapshot.
-- Readers never take a lock appends wait for. Needs READ COMMITTED (a new snapshot per statement).
CREATE OR REPLACE FUNCTION timebox_read_log(
  p_prefix text, p_after bigint, p_limit integer, p_window integer, p_types json,
  p_exact text, p_low text, p_high text, p_wait_ms integer)
RETURNS TABLE (settled boolean, upto double precision, more boolean, events text)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_types text[] := CASE WHEN p_types IS NULL THEN NULL ELSE ARRAY(SELECT json_array_elements_text(p_types)) END;
  v_m bigint;
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION USING ERRCODE = '${READ_COMMITTED_SQLSTATE}',
      MESSAGE = 'reading the timebox log needs READ COMMITTED isolation, not ' || current_setting('transaction_isolation');
  END IF;
  -- The p_limit-th match in the window (n counts matches in position order), else the window's last.
  SELECT coalesce(min(z.position) FILTER (WHERE z.n = p_limit), max(z.position)) INTO v_m
    FROM (SELECT w.position,
                 count(*) FILTER (WHERE (v_types IS NULL OR w.type = ANY (v_types))
                                    AND (p_exact IS NULL OR w.aggregate = p_exact
                                         OR (w.aggregate >= p_low AND w.aggregate < p_high)))
                   OVER (ORDER BY w.position) AS n
            FROM (SELECT e.position, e.aggregate, e.type FROM timebox_events e
                   WHERE e.prefix = p_prefix AND e.position > p_after ORDER BY e.position LIMIT p_window) w) z;
  IF v_m IS NULL THEN
    RETURN QUERY SELECT true, p_after::double precision, false, NULL::text;
    RETURN;
  END IF;
  IF NOT timebox_log_settle(timebox_log_writers(), p_wait_ms) THEN
    RETURN QUERY SELECT false, p_after::double precision, false, NULL::text;
    RETURN;
  END IF;
  RETURN QUERY
  SELECT true,
         (CASE WHEN count(*) > p_limit THEN max(r.position) FILTER (WHERE r.rn <= p_limit) ELSE v_m END)::double precision,
         count(*) > p_limit
           OR (SELECT x.position FROM timebox_events x WHERE x.prefix = p_prefix AND x.position > v_m
                ORDER BY x.position LIMIT 1) IS NOT NULL,
         (json_agg(json_build_array(r.aggregate, r.sequence, r.type, r.time_ms, r.data, r.position) ORDER BY r.position)
            FILTER (WHERE r.rn <= p_limit))::text
    FROM (SELECT e.aggregate, e.sequence, e.type, e.time_ms, e.data, e.position,
                 row_number() OVER (ORDER BY e.position) AS rn
            FROM (SELECT * FROM timebox_events e
                   WHERE e.prefix = p_prefix AND e.position > p_after AND e.position <= v_m
                     AND (v_types IS NULL OR e.type = ANY (v_types))
                     AND (p_exact IS NULL OR e.aggregate = p_exact OR (e.aggregate >= p_low AND e.aggregate < p_high))
                   ORDER BY e.position LIMIT p_limit + 1) e) r;
END
$fn$;

-- The settled head of a prefix's log: its newest position, once every transaction that could
-- still add an event at or below it has ended (the rule of timebox_read_log); 0 for an empty log.
-- settled is false when they had not ended within about p_wait_ms.
CREATE OR REPLACE FUNCTION timebox_log_head(p_prefix text, p_wait_ms integer)
RETURNS TABLE (settled boolean, head double precision)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_m bigint;
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION USING ERRCODE = '${READ_COMMITTED_SQLSTATE}',
      MESSAGE = 'reading the timebox log needs READ COMMITTED isolation, not ' || current_setting('transaction_isolation');
  END IF;
  SELECT e.position INTO v_m FROM timebox_events e WHERE e.prefix = p_prefix ORDER BY e.position DESC LIMIT 1;
  IF v_m IS NULL THEN
    RETURN QUERY SELECT true, 0::double precision;
    RETURN;
  END IF;
  RETURN QUERY SELECT timebox_log_settle(timebox_log_writers(), p_wait_ms), v_m::double precision;
END
$fn$;

-- Takes or renews the lease of a projection for p_holder if it is free, expired or p_holder's,
-- creating the record when missing; answers whether p_holder holds it and the record after the
-- attempt. Lease times are the server's clock (clock_timestamp(), not the transaction start).
CREATE OR REPLACE FUNCTION timebox_projection_claim(p_prefix text, p_name text, p_holder text, p_lease_ms bigint)
RETURNS TABLE (held boolean, checkpoint text, holder text, lease_until double precision, generation double precision, last_error text)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_held boolean := false;
BEGIN
  INSERT INTO timebox_projection AS p (prefix, name, holder, lease_until)
  VALUES (p_prefix, p_name, p_holder, clock_timestamp() + p_lease_ms * interval '1 millisecond')
  ON CONFLICT (prefix, name) DO UPDATE SET holder = EXCLUDED.holder, lease_until = EXCLUDED.lease_until
   WHERE p.holder IS NULL OR p.holder = EXCLUDED.holder OR p.lease_until IS NULL OR p.lease_until <= clock_timestamp();
  v_held := FOUND;
  -- A new statement: it sees the row even when another transaction committed it just now.
  RETURN QUERY
  SELECT v_held, p.checkpoint,
         CASE WHEN p.lease_until > clock_timestamp() THEN p.holder END,
         CASE WHEN p.holder IS NOT NULL AND p.lease_until > clock_timestamp()
              THEN floor(extract(epoch FROM p.lease_until) * 1000)::double precision ELSE 0 END,
         p.generation::double precision, p.last_error
    FROM timebox_projection p WHERE p.prefix = p_prefix AND p.name = p_name;
END
$fn$;

-- If p_holder holds the projection's lease (by the server's clock) and its generation is still
-- p_generation: stores the checkpoint (when p_set_checkpoint), sets (p_error_mode 1), clears (2) or
-- keeps (0) the last error, and renews the lease. Answers 'ok', 'lost-lease' or 'reset'. The row
-- stays locked until the caller's transaction ends, so a reset or a takeover waits for it.
CREATE OR REPLACE FUNCTION timebox_projection_save(
  p_prefix text, p_name text, p_holder text, p_generation bigint, p_set_checkpoint boolean,
  p_checkpoint text, p_error_mode integer, p_error text, p_lease_ms bigint)
RETURNS text
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_holder text;
  v_until timestamptz;
  v_generation bigint;
BEGIN
  SELECT p.holder, p.lease_until, p.generation INTO v_holder, v_until, v_generation
    FROM timebox_projection p WHERE p.prefix = p_prefix AND p.name = p_name FOR UPDATE;
  IF NOT FOUND OR v_holder IS DISTINCT FROM p_holder OR v_until IS NULL OR v_until <= clock_timestamp() THEN
    RETURN 'lost-lease';
  END IF;
  IF v_generation <> p_generation THEN
    RETURN 'reset';
  END IF;
  UPDATE timebox_projection p
     SET checkpoint = CASE WHEN p_set_checkpoint THEN p_checkpoint ELSE p.checkpoint END,
         last_error = CASE p_error_mode WHEN 1 THEN p_error WHEN 2 THEN NULL ELSE p.last_error END,
         lease_until = clock_timestamp() + p_lease_ms * interval '1 millisecond'
   WHERE p.prefix = p_prefix AND p.name = p_name;
  RETURN 'ok';
END
$fn$;
`;

/**
 * Version 2: the event feed is the log itself, and an append is one plain statement.
 *
 * - **No feed rows.** A feed reader reads `timebox_events` by position, through `timebox_read_log`'s
 *   settled-position rule, so an append writes nothing for subscribers: `timebox_feed` and
 *   `timebox_feed_horizon` are dropped, and nothing is pruned (the log is the feed's retention).
 * - **Appends leave the server functions.** `timebox_append` is dropped: the backend sends one
 *   statement per append (append-statement.ts), which costs the server much less than a PL/pgSQL
 *   call doing the same writes. Appends still answer whether a subscriber holds a lease in
 *   `timebox_feed_listener`, and the appending process announces its commits (feed-notifier.ts).
 * - **Trimmed positions.** `timebox_index.trimmed_position` is the highest position among an
 *   aggregate's events that a trimming snapshot or an archive removed; a feed reader that had not
 *   read past it reports the loss instead of staying silent (`timebox_read_log` with `p_trims`).
 */
const VERSION_2 = /* sql */ `
DROP FUNCTION IF EXISTS timebox_append(text, text, bigint, json, text, bigint, json, integer);
DROP TABLE IF EXISTS timebox_feed;
DROP TABLE IF EXISTS timebox_feed_horizon;

ALTER TABLE timebox_index ADD COLUMN IF NOT EXISTS trimmed_position bigint;
-- Partial, and on a column appends never change: appends keep their HOT head-row updates.
CREATE INDEX IF NOT EXISTS timebox_index_by_trim ON timebox_index (prefix, trimmed_position)
  WHERE trimmed_position IS NOT NULL;

-- As in version 1, and a trim records the highest position it removed in the head row.
CREATE OR REPLACE FUNCTION timebox_save_snapshot(
  p_prefix text, p_aggregate text, p_sequence bigint, p_data text, p_trim boolean)
RETURNS double precision
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_next bigint;
  v_life bigint;
  v_trimmed bigint;
BEGIN
  LOOP
    SELECT i.next_sequence, i.life_start INTO v_next, v_life FROM timebox_index i
     WHERE i.prefix = p_prefix AND i.aggregate = p_aggregate FOR UPDATE;
    EXIT WHEN FOUND;
    IF p_sequence > 0 THEN
      RETURN 0;
    END IF;
    INSERT INTO timebox_index (prefix, aggregate) VALUES (p_prefix, p_aggregate) ON CONFLICT DO NOTHING;
  END LOOP;
  IF p_sequence > v_next OR (v_life > 0 AND p_sequence <= v_life) THEN
    RETURN v_next;
  END IF;
  INSERT INTO timebox_snapshot AS s (prefix, aggregate, sequence, data)
  VALUES (p_prefix, p_aggregate, p_sequence, p_data)
  ON CONFLICT (prefix, aggregate) DO UPDATE SET sequence = EXCLUDED.sequence, data = EXCLUDED.data
   WHERE s.sequence < EXCLUDED.sequence;
  IF FOUND AND p_trim THEN
    WITH gone AS (
      DELETE FROM timebox_events e
       WHERE e.prefix = p_prefix AND e.aggregate = p_aggregate AND e.sequence < p_sequence
      RETURNING e.position)
    SELECT max(g.position) INTO v_trimmed FROM gone g;
    IF v_trimmed IS NOT NULL THEN
      UPDATE timebox_index i SET trimmed_position = greatest(i.trimmed_position, v_trimmed)
       WHERE i.prefix = p_prefix AND i.aggregate = p_aggregate;
    END IF;
  END IF;
  RETURN v_next;
END
$fn$;

-- As in version 1, and the tombstone records the highest position archived.
CREATE OR REPLACE FUNCTION timebox_archive_aggregate(p_prefix text, p_aggregate text)
RETURNS void
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_next bigint;
  v_archived bigint;
BEGIN
  SELECT i.next_sequence INTO v_next FROM timebox_index i
   WHERE i.prefix = p_prefix AND i.aggregate = p_aggregate AND i.live FOR UPDATE;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  INSERT INTO timebox_archive (prefix, aggregate, snapshot_sequence, snapshot_data, events)
  SELECT p_prefix, p_aggregate, coalesce(s.sequence, 0), s.data, coalesce(e.events, '[]')
    FROM (SELECT json_agg(json_build_array(ev.sequence, ev.type, ev.time_ms, ev.data, ev.position) ORDER BY ev.sequence) AS events
            FROM timebox_events ev
           WHERE ev.prefix = p_prefix AND ev.aggregate = p_aggregate) e
    LEFT JOIN timebox_snapshot s ON s.prefix = p_prefix AND s.aggregate = p_aggregate;
  WITH gone AS (
    DELETE FROM timebox_events e WHERE e.prefix = p_prefix AND e.aggregate = p_aggregate
    RETURNING e.position)
  SELECT max(g.position) INTO v_archived FROM gone g;
  DELETE FROM timebox_snapshot s WHERE s.prefix = p_prefix AND s.aggregate = p_aggregate;
  DELETE FROM timebox_labels l WHERE l.prefix = p_prefix AND l.aggregate = p_aggregate;
  UPDATE timebox_index i
     SET next_sequence = v_next + 1, life_start = v_next + 1, live = false, status = '', status_time = NULL,
         trimmed_position = greatest(i.trimmed_position, v_archived)
   WHERE i.prefix = p_prefix AND i.aggregate = p_aggregate;
  PERFORM pg_notify('${ARCHIVE_CHANNEL}', md5(p_prefix));
END
$fn$;

-- As in version 1 (see its comment for the settled-position rule), with p_trims: when true, also
-- the aggregates whose trimmed_position lies in (p_after, upto], as JSON text
-- [[aggregate, trimmed_position], ...], read in the same statement (so the same snapshot) as the
-- page: events removed before this read, at positions the reader had not reached (the feed
-- reports them as a gap). The more column is unchanged.
DROP FUNCTION IF EXISTS timebox_read_log(text, bigint, integer, integer, json, text, text, text, integer);
CREATE FUNCTION timebox_read_log(
  p_prefix text, p_after bigint, p_limit integer, p_window integer, p_types json,
  p_exact text, p_low text, p_high text, p_wait_ms integer, p_trims boolean)
RETURNS TABLE (settled boolean, upto double precision, more boolean, events text, trims text)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_types text[] := CASE WHEN p_types IS NULL THEN NULL ELSE ARRAY(SELECT json_array_elements_text(p_types)) END;
  v_m bigint;
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION USING ERRCODE = '${READ_COMMITTED_SQLSTATE}',
      MESSAGE = 'reading the timebox log needs READ COMMITTED isolation, not ' || current_setting('transaction_isolation');
  END IF;
  -- The p_limit-th match in the window (n counts matches in position order), else the window's last.
  SELECT coalesce(min(z.position) FILTER (WHERE z.n = p_limit), max(z.position)) INTO v_m
    FROM (SELECT w.position,
                 count(*) FILTER (WHERE (v_types IS NULL OR w.type = ANY (v_types))
                                    AND (p_exact IS NULL OR w.aggregate = p_exact
                                         OR (w.aggregate >= p_low AND w.aggregate < p_high)))
                   OVER (ORDER BY w.position) AS n
            FROM (SELECT e.position, e.aggregate, e.type FROM timebox_events e
                   WHERE e.prefix = p_prefix AND e.position > p_after ORDER BY e.position LIMIT p_window) w) z;
  IF v_m IS NULL THEN
    -- Nothing above p_after. Removals above it are reported with the page that passes them (the
    -- reader cannot move past them here: a position below them may still be in flight).
    RETURN QUERY SELECT true, p_after::double precision, false, NULL::text, NULL::text;
    RETURN;
  END IF;
  IF NOT timebox_log_settle(timebox_log_writers(), p_wait_ms) THEN
    RETURN QUERY SELECT false, p_after::double precision, false, NULL::text, NULL::text;
    RETURN;
  END IF;
  RETURN QUERY
  WITH r AS (
    SELECT e.aggregate, e.sequence, e.type, e.time_ms, e.data, e.position,
           row_number() OVER (ORDER BY e.position) AS rn
      FROM (SELECT * FROM timebox_events e
             WHERE e.prefix = p_prefix AND e.position > p_after AND e.position <= v_m
               AND (v_types IS NULL OR e.type = ANY (v_types))
               AND (p_exact IS NULL OR e.aggregate = p_exact OR (e.aggregate >= p_low AND e.aggregate < p_high))
             ORDER BY e.position LIMIT p_limit + 1) e),
  page AS (
    SELECT count(*) > p_limit AS cut,
           CASE WHEN count(*) > p_limit THEN max(r.position) FILTER (WHERE r.rn <= p_limit) ELSE v_m END AS upto,
           json_agg(json_build_array(r.aggregate, r.sequence, r.type, r.time_ms, r.data, r.position) ORDER BY r.position)
             FILTER (WHERE r.rn <= p_limit) AS events
      FROM r)
  SELECT true, page.upto::double precision,
         page.cut
           OR (SELECT x.position FROM timebox_events x WHERE x.prefix = p_prefix AND x.position > v_m
                ORDER BY x.position LIMIT 1) IS NOT NULL,
         page.events::text,
         CASE WHEN p_trims THEN (SELECT json_agg(json_build_array(i.aggregate, i.trimmed_position) ORDER BY i.trimmed_position)::text
                                   FROM timebox_index i
                                  WHERE i.prefix = p_prefix AND i.trimmed_position > p_after AND i.trimmed_position <= page.upto) END
    FROM page;
END
$fn$;
`;

/**
 * Migrations by the version they produce; each runs in the schema transaction. Version 1 is the
 * first released schema; a later release appends the steps from it to its own version.
 */
const MIGRATIONS: readonly string[] = [VERSION_1, VERSION_2];

// The SQLSTATE the schema script raises when the database is newer than this release.
const TOO_NEW_SQLSTATE = 'TBX01';

// The SQLSTATE the schema script raises when the database holds the tables of a development build.
const UNRELEASED_SQLSTATE = 'TBX03';

/**
 * The whole schema step as one script: the version check and every migration run in one PL/pgSQL
 * block, so the step is a single statement. It is sent by itself with the simple protocol, which
 * runs a multi-statement string as one implicit transaction that the server rolls back by itself
 * on any error. (Not `sql.begin`: when the connection dies mid-transaction, postgres.js 3.4 sends
 * its ROLLBACK on the dead connection and throws an uncaught TypeError from a timer, crashing the
 * process.)
 *
 * Development builds before the first release recorded their versions (1 to 4, none of them
 * released) in `timebox_schema_version`; released versions are recorded in `timebox_schema`, so the
 * two never collide, and a database holding the old table is refused instead of being guessed at.
 */
function schemaScript(target: number): string {
  const steps = MIGRATIONS.slice(0, target)
    .map((ddl, i) => `  IF stored < ${i + 1} THEN\n${ddl}\n  END IF;`)
    .join('\n');
  return `
SET LOCAL client_min_messages = warning;
SELECT pg_advisory_xact_lock(${SCHEMA_LOCK_KEY});
CREATE TABLE IF NOT EXISTS timebox_schema (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  version integer NOT NULL);
DO $timebox_schema$
DECLARE
  stored integer := coalesce((SELECT version FROM timebox_schema), 0);
  unreleased integer;
BEGIN
  IF to_regclass('timebox_schema_version') IS NOT NULL THEN
    EXECUTE 'SELECT max(version) FROM timebox_schema_version' INTO unreleased;
    RAISE EXCEPTION USING ERRCODE = '${UNRELEASED_SQLSTATE}', MESSAGE = coalesce(unreleased, 0)::text;
  END IF;
  IF stored > ${SCHEMA_VERSION} THEN
    RAISE EXCEPTION USING ERRCODE = '${TOO_NEW_SQLSTATE}', MESSAGE = stored::text;
  END IF;
${steps}
  IF stored < ${target} THEN
    INSERT INTO timebox_schema (singleton, version) VALUES (true, ${target})
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
 * The database holds timebox tables written by an unreleased development build of
 * `@timebox/postgres` (they record their version in `timebox_schema_version`). No release reads
 * them: drop the `timebox_*` tables and the `timebox_position_seq` sequence, or use another
 * database or schema.
 */
export class UnreleasedSchemaError extends TimeboxError {
  constructor(readonly found: number) {
    super(
      'POSTGRES_SCHEMA_UNRELEASED',
      `the timebox tables were created by an unreleased development build (timebox_schema_version holds version ${found}), ` +
        'which no release reads: drop the timebox_* tables and the timebox_position_seq sequence, or use another database',
    );
  }
}

/**
 * Creates the schema, or migrates it from an older released version, idempotently. Concurrent
 * callers (in one process or many) serialize on an advisory lock, and the migrations commit
 * together with the version they produce, so a crash half-way leaves the previous version intact.
 * `target` stops at an older version (the migration tests build a version 1 database with it).
 */
export async function ensureSchema(sql: Sql, target = SCHEMA_VERSION): Promise<void> {
  try {
    // Constant DDL written above, no caller input; no parameters, so the simple protocol.
    await sql.unsafe(schemaScript(target));
  } catch (error) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (code === TOO_NEW_SQLSTATE) throw new SchemaVersionError(Number(message), SCHEMA_VERSION);
    if (code === UNRELEASED_SQLSTATE) throw new UnreleasedSchemaError(Number(message));
    throw error;
  }
}
