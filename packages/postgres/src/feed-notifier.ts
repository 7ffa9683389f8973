import { createHash } from 'node:crypto';
import type { Sql } from 'postgres';
import { FEED_CHANNEL } from './schema.js';

/**
 * Announces a prefix's committed appends on the feed channel, from the appending process, after
 * each append's commit, in a transaction of its own, on a connection of its own (behind the
 * appends queued for the pool, an announcement would arrive a queue's wait late).
 *
 * Why not `pg_notify` inside the append: PostgreSQL takes one database-wide lock when a notifying
 * transaction commits and holds it through the commit's WAL flush, so notifying appends commit one
 * at a time instead of sharing flushes (a live subscriber cost 55% of the append throughput at 64 in
 * flight that way). Here the NOTIFY runs in a statement of its own whose transaction commits with
 * `synchronous_commit` off (set for that transaction only), so it holds the lock for microseconds,
 * and appends never take it.
 *
 * Coalesced: at most one NOTIFY is in flight per notifier; appends that commit meanwhile ask for one
 * more, sent when it returns (and `NOTIFY_SPACING_MS` after the previous one). No wake-up is lost: every append that asked is acknowledged as
 * committed before it asks, and a NOTIFY is sent after its asking (the one in flight was sent
 * before, so another follows), and a subscriber reads after each notification it receives (or once
 * more after the read in progress, see feed-reader.ts), so it reads after the commit and sees the
 * row. What can still drop a notification (this process dying between an append's commit and its
 * NOTIFY, the NOTIFY failing on a lost connection) is covered by the reader's periodic safety read.
 */
/**
 * NOTIFYs are sent at least this far apart: under a steady stream of appends one every few
 * milliseconds wakes readers as often as they read (see `READ_SPACING_MS` in feed-reader.ts), and
 * each costs a server process a transaction, which the writers on a small machine feel. The first
 * after a quiet spell goes at once.
 */
const NOTIFY_SPACING_MS = 20;

export class FeedNotifier {
  readonly #open: () => Sql;
  /** The notifier's own connection, opened on the first announcement. */
  #sql: Sql | undefined;
  readonly #hash: string;
  /** The NOTIFY in flight, and any that follow it, until none is asked for; undefined when idle. */
  #sending: Promise<void> | undefined;
  /** An append committed after the NOTIFY in flight was sent: send one more when it returns. */
  #again = false;
  #closed = false;
  /** When the last NOTIFY was sent (`performance.now()`). */
  #lastSentAt = -Infinity;

  /** `open` gives the connection to announce on (see `openConnection`), opened on first use. */
  constructor(open: () => Sql, prefix: string) {
    this.#open = open;
    // The payload subscribers filter on: fixed length, whatever the prefix holds.
    this.#hash = createHash('md5').update(prefix).digest('hex');
  }

  /** Called once an append that found a subscriber's lease has committed. Never throws. */
  notify(): void {
    if (this.#closed) return;
    if (this.#sending !== undefined) {
      this.#again = true;
      return;
    }
    this.#sending = this.#loop();
  }

  /** Resolves once every NOTIFY asked for has been sent (or failed). */
  async flush(): Promise<void> {
    await this.#sending;
  }

  /** Sends what is owed, then ends the connection; `notify` after this is ignored. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#sending;
    await this.#sql?.end({ timeout: 5 });
  }

  async #loop(): Promise<void> {
    // Yield first, so `notify` has stored this promise before the loop can end and clear it.
    await Promise.resolve();
    do {
      const wait = this.#lastSentAt + NOTIFY_SPACING_MS - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      this.#again = false;
      this.#lastSentAt = performance.now();
      try {
        const sql = (this.#sql ??= this.#open());
        await sql`SELECT set_config('synchronous_commit', 'off', true), pg_notify(${FEED_CHANNEL}, ${this.#hash})`;
      } catch {
        // The pool is down or closing: the reader's safety read picks the rows up.
      }
    } while (this.#again);
    this.#sending = undefined;
  }
}
