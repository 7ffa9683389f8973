import { createHash, randomUUID } from 'node:crypto';
import type { Sql } from 'postgres';
import type { Feed, FeedSink } from '@timebox/core';
import { guard } from './errors.js';
import { parseLogRuns } from './event-codec.js';
import { FEED_CHANNEL, SETTLE_WAIT_MS } from './schema.js';
import { aggregateIdFromKey } from './text-codec.js';

/** Events one read delivers at most. */
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
/**
 * Reads start at least this far apart (a read delivers everything settled, up to a page, and
 * pages on while more is there). Under a steady stream of appends every commit announces itself,
 * and reading after each would keep a server process and the lock table busy for the writers (on
 * two cores a reader reading back to back cost them a fifth of their throughput); spaced, one
 * read takes what many appends wrote. After a quiet spell the first announcement reads at once.
 */
const READ_SPACING_MS = 20;

interface FeedPage {
  /** False when appends in flight below the page's end did not finish in time: nothing was read. */
  settled: boolean;
  /** The position read up to. */
  upto: number;
  more: boolean;
  /** See `parseLogRuns`; null for an empty page. */
  events: string | null;
  /** `[[aggregate, trimmed_position], ...]`: events removed before they were read; or null. */
  trims: string | null;
}

/**
 * A store's feed, read from the log itself: appends write nothing for subscribers. The reader
 * keeps a position and reads the settled log above it (`timebox_read_log`, which returns events
 * only up to a position below which every append has ended, so none can appear there later),
 * hands each run of one aggregate's events to the sink and moves its position past them. It wakes
 * on the NOTIFY the appending process sends after the commit (`FeedNotifier`, coalesced: one
 * notification can stand for many appends, and every read takes all there is), and reads once a
 * second anyway as a backstop.
 *
 * Per aggregate the order is right: an append waits for the previous append's lock on the
 * aggregate, so it takes its positions after that one committed. Because the position lives in
 * the reader and the events stay in the table, a reader whose listen connection dropped, or that
 * fell behind, resumes without loss; only events a snapshot trimmed (or an archive moved) before
 * the reader got to them are lost, and it reports those as gaps (see `trimmed_position`).
 *
 * Appends are announced only while a subscriber holds a lease row in `timebox_feed_listener`
 * (stores nobody listens to should not pay for it); the reader takes its lease before it starts,
 * renews it while open (removing the prefix's long-expired leases of readers that died), and
 * removes it on close.
 */
export class FeedReader implements Feed {
  readonly #sql: Sql;
  readonly #prefix: string;
  readonly #sink: FeedSink;
  /** Every event at or below this position was delivered, or predates the reader. */
  #after = 0;
  #listening: { unlisten: () => Promise<void> } | undefined;
  #reading: Promise<void> | undefined;
  #again = false;
  #closed = false;
  /**
   * False until the opening position is known. postgres.js calls the listen callback's `onlisten`
   * on the first LISTEN too, not only after a reconnect: a read started before the position is
   * known would deliver the prefix's whole log.
   */
  #started = false;
  /** A wake came before the reader started: read once right after it. */
  #wakeWhenStarted = false;
  #retryDelay = RETRY_MIN_MS;
  #retryTimer: NodeJS.Timeout | undefined;
  /** When the last read started (`performance.now()`), and the timer holding back the next one. */
  #lastReadAt = -Infinity;
  #spacingTimer: NodeJS.Timeout | undefined;
  readonly #listenerId = randomUUID();
  #leaseTimer: NodeJS.Timeout | undefined;
  #safetyTimer: NodeJS.Timeout | undefined;

  private constructor(sql: Sql, prefix: string, sink: FeedSink) {
    this.#sql = sql;
    this.#prefix = prefix;
    this.#sink = sink;
  }

  /**
   * Reads and listens through `sql`, which it owns (and ends on close): give it an instance of
   * its own. Starts listening and starts at `settledHead()` (the log's settled head: every append that
   * commits later has a position above it); resolves once live. `safetyReadMs` is the backstop
   * period (tests raise it to show that notifications alone deliver).
   */
  static async open(
    sql: Sql,
    prefix: string,
    sink: FeedSink,
    settledHead: () => Promise<number>,
    safetyReadMs = SAFETY_READ_MS,
  ): Promise<FeedReader> {
    const reader = new FeedReader(sql, prefix, sink);
    const prefixHash = createHash('md5').update(prefix).digest('hex');
    // Lease and listen first, then take the starting point: an append committing after it was
    // taken saw the lease, so it announces itself, and the reader is listening.
    try {
      await guard('register as a feed listener', () => reader.#renewLease());
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
      reader.#after = await settledHead();
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
    clearTimeout(this.#spacingTimer);
    clearInterval(this.#leaseTimer);
    clearInterval(this.#safetyTimer);
    await this.#listening?.unlisten().catch(() => undefined);
    await this.#reading?.catch(() => undefined);
    await this.#sql`DELETE FROM timebox_feed_listener WHERE prefix = ${this.#prefix} AND listener = ${this.#listenerId}`.catch(
      () => undefined,
    );
    await this.#sql.end({ timeout: 5 });
  }

  async #renewLease(): Promise<void> {
    await this.#sql`
      WITH renewed AS (
        INSERT INTO timebox_feed_listener (prefix, listener, expires_at)
        VALUES (${this.#prefix}, ${this.#listenerId}, now() + make_interval(secs => ${LEASE_MS / 1000}))
        ON CONFLICT (prefix, listener) DO UPDATE SET expires_at = EXCLUDED.expires_at)
      DELETE FROM timebox_feed_listener l WHERE l.prefix = ${this.#prefix} AND l.expires_at < now() - interval '1 hour'`;
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
    if (this.#spacingTimer !== undefined) return;
    const wait = this.#lastReadAt + READ_SPACING_MS - performance.now();
    if (wait > 0) {
      this.#spacingTimer = setTimeout(() => {
        this.#spacingTimer = undefined;
        this.#wake();
      }, wait);
      this.#spacingTimer.unref();
      return;
    }
    this.#lastReadAt = performance.now();
    this.#reading = this.#readAll()
      .then(
        () => {
          this.#retryDelay = RETRY_MIN_MS;
        },
        () => {
          // The pool is down or the server restarting: try again with backoff. Nothing is lost:
          // the events stay in the log, and the reader's position moved only past delivered ones.
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

  /** Reads and delivers the settled log above the position, page by page. */
  async #readAll(): Promise<void> {
    for (;;) {
      if (this.#closed) return;
      const [page] = await this.#sql<FeedPage[]>`
        SELECT settled, upto, more, events, trims
          FROM timebox_read_log(${this.#prefix}, ${this.#after}, ${PAGE}, ${PAGE}, NULL, NULL, NULL, NULL, ${SETTLE_WAIT_MS}, true)`;
      const { settled, upto, more, events, trims } = page as FeedPage;
      if (!settled) {
        // Appends in flight below the page's end outlasted the server-side wait: come back.
        this.#again = true;
        return;
      }
      if (trims !== null) {
        for (const [aggregate, position] of JSON.parse(trims) as [string, number][]) {
          this.#sink.gap(
            `events of ${JSON.stringify(aggregateIdFromKey(aggregate))} up to position ${position} were trimmed (by a snapshot, ` +
              'or archived) before this subscriber read them; read the aggregate back',
          );
        }
      }
      let delivered = 0;
      if (events !== null) {
        for (const run of parseLogRuns(events)) {
          this.#sink.events(run.id, run.records);
          delivered += run.records.length;
        }
      }
      this.#after = upto;
      // Page on at once only through a backlog (a full page). `more` is also true whenever an
      // append committed after the page's snapshot, which under a steady stream is always: paging
      // on then read back to back and cost the writers a fifth of their throughput. Such appends
      // are announced after their commit, so a notification that wakes this reader again follows.
      if (!more || delivered < PAGE) return;
    }
  }
}
