import { createHash, randomUUID } from 'node:crypto';
import type { Sql } from 'postgres';
import type { Feed, FeedSink } from '@timebox/core';
import { guard } from './errors.js';
import { parseEventList } from './event-codec.js';
import { FEED_CHANNEL } from './schema.js';
import { aggregateIdFromKey } from './text-codec.js';

/** Feed rows one query reads at most. */
const PAGE = 1_000;
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2_000;
/** How long a listener lease lasts, and how often it is renewed. */
const LEASE_MS = 60_000;
const RENEW_MS = 20_000;
/**
 * A safety read this often even without a notification: an append that checked for listeners
 * just before this reader registered commits without notifying, and a notification can be lost
 * with a dropped connection or an appending process that died between its commit and its NOTIFY
 * (see feed-notifier.ts). It is a backstop, not the wake-up mechanism.
 */
const SAFETY_READ_MS = 1_000;

interface FeedRow {
  /** The reading statement's snapshot xmin: every transaction below it had finished. */
  xmin: string;
  /** Feed rows below this transaction ID were pruned (null when never). */
  pruned_below: string | null;
  /** Null when no feed row matched (the row still carries xmin and pruned_below). */
  tx: string | null;
  id: string | null;
  aggregate: string | null;
  first_sequence: number | null;
  count: number | null;
  /** The row's events as stored now (see `parseEventList`); fewer than `count` if trimmed since. */
  events: string | null;
}

/**
 * Reads a store's feed (`timebox_feed`, one row per append, written by `timebox_append` in the
 * append's transaction) and hands each append's events to the sink, waking on the NOTIFY the
 * appending process sends after the commit (`FeedNotifier`, coalesced: one notification can stand
 * for many appends, and every read takes all the rows there are).
 *
 * Rows are ordered by transaction ID, which is not commit order: a row with a lower `tx` may
 * commit after one with a higher `tx`. So the reader keeps a floor — the snapshot xmin of its last
 * read, below which every transaction had finished, so no new row can appear there — re-reads the
 * rows at or above the floor each time, and skips those it already delivered. Per aggregate the
 * order is right: an append waits for the previous append's lock on the aggregate, so it gets the
 * higher transaction ID and commits later. Because its position lives in the table, a reader
 * whose listen connection dropped resumes without loss; only rows pruned past its floor (it was
 * away for more than the feed's retention) or events trimmed by a snapshot before it read them
 * are lost, and it reports those as gaps.
 *
 * Appends are announced only while a subscriber holds a lease row in `timebox_feed_listener`
 * (stores nobody listens to should not pay for it); the reader takes its lease before it starts,
 * renews it while open, and removes it on close.
 */
export class FeedReader implements Feed {
  readonly #sql: Sql;
  readonly #prefix: string;
  readonly #sink: FeedSink;
  /** Transaction ID below which everything was read (or predates the reader). */
  #floor = '0';
  /** Rows at or above the floor already delivered (or present when the reader opened): id → tx. */
  #seen = new Map<string, bigint>();
  #listening: { unlisten: () => Promise<void> } | undefined;
  #reading: Promise<void> | undefined;
  #again = false;
  #closed = false;
  /**
   * False until the opening read marked what was already there as read. postgres.js calls the
   * listen callback's `onlisten` on the first LISTEN too, not only after a reconnect: a read
   * started by it before the opening read would deliver every feed row of the prefix.
   */
  #started = false;
  /** A wake came before the opening read finished: read once more right after it. */
  #wakeWhenStarted = false;
  #retryDelay = RETRY_MIN_MS;
  #retryTimer: NodeJS.Timeout | undefined;
  readonly #listenerId = randomUUID();
  #leaseTimer: NodeJS.Timeout | undefined;
  #safetyTimer: NodeJS.Timeout | undefined;

  private constructor(sql: Sql, prefix: string, sink: FeedSink) {
    this.#sql = sql;
    this.#prefix = prefix;
    this.#sink = sink;
  }

  /**
   * Starts listening and marks every row already committed as read; resolves once live.
   * `safetyReadMs` is the backstop period (tests raise it to show that notifications alone deliver).
   */
  static async open(sql: Sql, prefix: string, sink: FeedSink, safetyReadMs = SAFETY_READ_MS): Promise<FeedReader> {
    const reader = new FeedReader(sql, prefix, sink);
    const prefixHash = createHash('md5').update(prefix).digest('hex');
    await guard('register as a feed listener', () => reader.#renewLease());
    // Listen first, then take the starting point: an append committing in between is either
    // visible to the first read (and skipped as old) or read after its notification.
    reader.#listening = await guard('listen for appended events', () =>
      sql.listen(
        FEED_CHANNEL,
        (payload) => {
          if (payload === prefixHash) reader.#wake();
        },
        // Also called after the listen connection reconnected: read what was appended meanwhile.
        () => reader.#wake(),
      ),
    );
    try {
      // Every transaction below the current snapshot's xmin has finished, so the rows there are
      // all old: start the floor at it and mark as read only the few rows at or above it, instead
      // of paging through (and fetching the events of) the prefix's whole feed.
      await guard('open the event feed', async () => {
        const [row] = await sql<{ xmin: string }[]>`SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin`;
        reader.#floor = (row as { xmin: string }).xmin;
        await reader.#readAll(false);
      });
    } catch (error) {
      await reader.close();
      throw error;
    }
    reader.#started = true;
    if (reader.#wakeWhenStarted) reader.#wake();
    reader.#leaseTimer = setInterval(() => void reader.#renewLease().catch(() => undefined), RENEW_MS);
    reader.#leaseTimer.unref();
    reader.#safetyTimer = setInterval(() => reader.#wake(), safetyReadMs);
    reader.#safetyTimer.unref();
    return reader;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    clearInterval(this.#leaseTimer);
    clearInterval(this.#safetyTimer);
    await this.#listening?.unlisten().catch(() => undefined);
    await this.#reading?.catch(() => undefined);
    await this.#sql`DELETE FROM timebox_feed_listener WHERE prefix = ${this.#prefix} AND listener = ${this.#listenerId}`.catch(
      () => undefined,
    );
  }

  async #renewLease(): Promise<void> {
    await this.#sql`
      INSERT INTO timebox_feed_listener (prefix, listener, expires_at)
      VALUES (${this.#prefix}, ${this.#listenerId}, now() + make_interval(secs => ${LEASE_MS / 1000}))
      ON CONFLICT (prefix, listener) DO UPDATE SET expires_at = EXCLUDED.expires_at`;
  }

  /** Reads now, or once more after the read in progress. */
  #wake(): void {
    if (this.#closed) return;
    if (!this.#started) {
      this.#wakeWhenStarted = true;
      return;
    }
    if (this.#reading !== undefined) {
      this.#again = true;
      return;
    }
    this.#reading = this.#readAll(true)
      .then(
        () => {
          this.#retryDelay = RETRY_MIN_MS;
        },
        () => {
          // The pool is down or the server restarting: try again with backoff. Nothing is lost,
          // the position lives in the table.
          this.#retryTimer = setTimeout(() => this.#wake(), this.#retryDelay);
          this.#retryTimer.unref();
          this.#retryDelay = Math.min(this.#retryDelay * 2, RETRY_MAX_MS);
        },
      )
      .finally(() => {
        this.#reading = undefined;
        if (this.#again) {
          this.#again = false;
          this.#wake();
        }
      });
  }

  /** Reads every row at or above the floor, page by page; `deliver` false only marks them seen. */
  async #readAll(deliver: boolean): Promise<void> {
    let after: { tx: string; id: string } | undefined;
    let nextFloor: string | undefined;
    for (;;) {
      const rows = await this.#page(after);
      const first = rows[0] as FeedRow;
      nextFloor ??= first.xmin;
      if (deliver && first.pruned_below !== null && BigInt(first.pruned_below) > BigInt(this.#floor)) {
        this.#sink.gap(
          `appends committed in transactions ${this.#floor}–${first.pruned_below} were pruned from the feed before this ` +
            'subscriber read them all (it was away or behind for more than feedRetention appends); read the affected aggregates back',
        );
        this.#floor = first.pruned_below;
      }
      for (const row of rows) {
        if (row.id === null || row.tx === null) continue;
        after = { tx: row.tx, id: row.id };
        if (this.#seen.has(row.id)) continue;
        this.#seen.set(row.id, BigInt(row.tx));
        if (deliver) this.#deliver(row);
      }
      if (rows.length < PAGE) break;
    }
    // Every transaction below the first page's xmin had finished then, and every page was read
    // after that, so nothing new can appear below it.
    const floor = BigInt(nextFloor);
    if (floor > BigInt(this.#floor)) this.#floor = nextFloor;
    for (const [id, tx] of this.#seen) if (tx < BigInt(this.#floor)) this.#seen.delete(id);
  }

  #page(after: { tx: string; id: string } | undefined): Promise<FeedRow[]> {
    const afterTx = after?.tx ?? this.#floor;
    const afterId = after?.id ?? '-1';
    return this.#sql<FeedRow[]>`
      SELECT s.xmin::text AS xmin, h.pruned_below::text AS pruned_below, f.tx::text AS tx, f.id::text AS id,
             f.aggregate, f.first_sequence::float8 AS first_sequence, f.count,
             (SELECT json_agg(json_build_array(e.sequence, e.type, e.time_ms, e.data, e.position) ORDER BY e.sequence)::text
                FROM timebox_events e
               WHERE e.prefix = ${this.#prefix} AND e.aggregate = f.aggregate
                 AND e.sequence >= f.first_sequence AND e.sequence < f.first_sequence + f.count) AS events
        FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) s
        LEFT JOIN timebox_feed_horizon h ON h.prefix = ${this.#prefix}
        LEFT JOIN LATERAL (
          SELECT * FROM timebox_feed f
           WHERE f.prefix = ${this.#prefix} AND f.tx >= ${this.#floor}::xid8
             AND (f.tx, f.id) > (${afterTx}::xid8, ${afterId}::bigint)
           ORDER BY f.tx, f.id LIMIT ${PAGE}) f ON true`;
  }

  #deliver(row: FeedRow): void {
    const id = aggregateIdFromKey(row.aggregate as string);
    const first = row.first_sequence as number;
    const count = row.count as number;
    const events = row.events === null ? [] : parseEventList(row.events);
    if (events.length < count) {
      const from = events[0]?.sequence ?? first + count;
      this.#sink.gap(
        `events ${first}–${from - 1} of ${JSON.stringify(id)} were trimmed (by a snapshot, or archived) before this subscriber read them`,
      );
    }
    if (events.length > 0) this.#sink.events(id, events);
  }
}
