import { createHash } from 'node:crypto';
import type { Sql } from 'postgres';
import { holdWhile, StoreClosedError, WakeSignal, type ArchiveRecordData } from '@timebox/core';
import { ARCHIVE_CHANNEL } from './schema.js';
import { guard } from './errors.js';
import { parseEventList } from './event-codec.js';
import { aggregateIdFromKey } from './text-codec.js';

interface TakenRow {
  id: string;
  lease: string;
  aggregate: string;
  snapshot_sequence: number;
  snapshot_data: string | null;
  /** JSON text, see `parseEventList`. */
  events: string;
}

// Notifications can be missed (a dropped listen connection, say); a waiting consumer checks the
// table again after this long even without one. It is a safety net, not the wake-up mechanism.
const SAFETY_RECHECK_MS = 15_000;

/**
 * Consumes one store's archive records: leases a row with `FOR UPDATE SKIP LOCKED` and a lease
 * expiry (server clock), runs the handler, deletes the row only after the handler resolved, and
 * releases it at once when the handler throws. While the handler runs the lease is renewed, so
 * only a consumer that died loses its row to another. Waits on LISTEN/NOTIFY and on the soonest lease
 * expiry, never in a polling loop.
 */
export class ArchiveConsumer {
  readonly #sql: Sql;
  readonly #prefix: string;
  readonly #prefixHash: string;
  readonly #leaseMs: number;
  /** Woken by every notification; its generation tells a take that one landed meanwhile. */
  readonly #wakeup = new WakeSignal();
  #listening: Promise<{ unlisten: () => Promise<void> }> | undefined;
  /** Aborted on close: leases on rows whose handlers are running stop being renewed. */
  readonly #closing = new AbortController();
  #closed = false;

  constructor(sql: Sql, prefix: string, leaseMs: number) {
    this.#sql = sql;
    this.#prefix = prefix;
    this.#prefixHash = createHash('md5').update(prefix).digest('hex');
    this.#leaseMs = leaseMs;
  }

  async consume(handler: (record: ArchiveRecordData) => Promise<void>, signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    await this.#listen();
    let row: TakenRow;
    for (;;) {
      signal?.throwIfAborted();
      this.#assertOpen('consume the archive');
      const generation = this.#wakeup.generation;
      const taken = await guard('take an archive record', () => this.#take());
      if (taken !== undefined) {
        if (signal?.aborted) {
          await guard('release an archive record', () => this.#release(taken));
          signal.throwIfAborted();
        }
        row = taken;
        break;
      }
      if (generation !== this.#wakeup.generation) continue;
      const untilExpiry = await guard('read archive leases', () => this.#msUntilSoonestExpiry());
      if (generation !== this.#wakeup.generation) continue;
      await this.#wakeup.wait(Math.min(untilExpiry ?? SAFETY_RECHECK_MS, SAFETY_RECHECK_MS), signal, this.#closing.signal);
    }
    try {
      await this.#whileHolding(row, () => handler(toRecord(row)));
    } catch (error) {
      await guard('release an archive record', () => this.#release(row)).catch(() => undefined);
      throw error;
    }
    await guard(
      'acknowledge an archive record',
      () => this.#sql`DELETE FROM timebox_archive WHERE id = ${row.id} AND lease = ${row.lease}`,
    );
  }

  /** Stops listening, stops renewing held records and rejects waiting consumers with `StoreClosedError`. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#closing.abort();
    this.#wakeup.wake();
    const listening = this.#listening;
    this.#listening = undefined;
    if (listening) await listening.then((l) => l.unlisten()).catch(() => undefined);
  }

  #listen(): Promise<unknown> {
    this.#listening ??= this.#sql.listen(
      ARCHIVE_CHANNEL,
      (payload) => {
        if (payload === this.#prefixHash) this.#wakeup.wake();
      },
      // Also called after the listen connection reconnected: anything may have been missed.
      () => this.#wakeup.wake(),
    );
    return guard('listen for archive records', () => this.#listening as Promise<unknown>).catch((error: unknown) => {
      this.#listening = undefined;
      throw error;
    });
  }

  async #take(): Promise<TakenRow | undefined> {
    const rows = await this.#sql<TakenRow[]>`
      WITH now AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms)
      UPDATE timebox_archive a
         SET leased_until = (SELECT ms FROM now) + ${this.#leaseMs}, lease = a.lease + 1
       WHERE a.id = (SELECT c.id FROM timebox_archive c
                      WHERE c.prefix = ${this.#prefix} AND c.leased_until <= (SELECT ms FROM now)
                      ORDER BY c.id LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING a.id::text AS id, a.lease::text AS lease, a.aggregate,
                a.snapshot_sequence::float8 AS snapshot_sequence, a.snapshot_data,
                a.events::text AS events`;
    return rows[0];
  }

  /**
   * Runs `work` while extending this consumer's lease on the row every third of the lease time,
   * so a live consumer with a slow handler keeps its record; a consumer that died stops renewing
   * and the row is taken again once its lease expires.
   */
  #whileHolding(row: TakenRow, work: () => Promise<void>): Promise<void> {
    const intervalMs = Math.max(1, Math.floor(this.#leaseMs / 3));
    return holdWhile({ intervalMs, renew: () => this.#renew(row), until: this.#closing.signal }, work);
  }

  /** Extends the lease while it is still ours: a row another consumer took since is never taken back. */
  async #renew(row: TakenRow): Promise<boolean> {
    const renewed = await this.#sql`
      UPDATE timebox_archive
         SET leased_until = (extract(epoch FROM clock_timestamp()) * 1000)::bigint + ${this.#leaseMs}
       WHERE id = ${row.id} AND lease = ${row.lease}`;
    return renewed.count === 1;
  }

  async #msUntilSoonestExpiry(): Promise<number | undefined> {
    const rows = await this.#sql<{ wait: number | null }[]>`
      SELECT (min(leased_until) - (extract(epoch FROM clock_timestamp()) * 1000)::bigint)::float8 AS wait
        FROM timebox_archive WHERE prefix = ${this.#prefix}`;
    const wait = rows[0]?.wait;
    return wait === null || wait === undefined ? undefined : Math.max(1, wait);
  }

  async #release(row: TakenRow): Promise<void> {
    // Only the current holder may release; announce it so waiting consumers take it at once.
    await this.#sql`
      WITH released AS (
        UPDATE timebox_archive SET leased_until = 0 WHERE id = ${row.id} AND lease = ${row.lease} RETURNING 1)
      SELECT pg_notify(${ARCHIVE_CHANNEL}, ${this.#prefixHash}) FROM released`;
  }

  #assertOpen(operation: string): void {
    if (this.#closed) throw new StoreClosedError(operation);
  }
}

function toRecord(row: TakenRow): ArchiveRecordData {
  return {
    streamId: row.id,
    aggregateId: aggregateIdFromKey(row.aggregate),
    snapshotData: row.snapshot_data ?? undefined,
    snapshotSequence: row.snapshot_sequence,
    events: parseEventList(row.events),
  };
}
