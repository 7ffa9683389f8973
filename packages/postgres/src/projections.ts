import type { Sql, TransactionSql } from 'postgres';
import { InvalidArgumentError, TimeboxError, type ProjectionRecord, type ProjectionStore, type ProjectionWrite } from '@timebox/core';
import { guard, isConnectionLoss, onlyRow, PostgresBackendError } from './errors.js';
import { fromStoredText, toStoredText } from './text-codec.js';
import { runTransaction } from './transaction.js';

/** Thrown inside a projection transaction to roll its work back when the checkpoint save was refused. */
class Rollback extends Error {}

/** A `timebox_projection` row as the queries read it: lease fields already judged by the server's clock. */
export interface ProjectionRow {
  checkpoint: string | null;
  /** Null when nobody holds the lease or it expired. */
  holder: string | null;
  /** Epoch ms; 0 when nobody holds the lease. */
  lease_until: number;
  generation: number;
  last_error: string | null;
}

/** What a projection save changes: the checkpoint when given; the last error set (string), cleared (null) or kept (absent). */
export type SaveUpdate = { readonly checkpoint?: string; readonly lastError?: string | null };

/**
 * Projection records in `timebox_projection`, keyed by (store prefix, name). Every write is one
 * statement or one server-side function call, atomic and conditional; lease expiry is judged by the
 * server's clock (`clock_timestamp()`), so processes with skewed clocks agree. Names, holders,
 * checkpoints and errors go through the NUL-safe text codec, so any string round-trips.
 */
export class PostgresProjections implements ProjectionStore {
  readonly #sql: Sql;
  readonly #prefix: string;
  /** Throws `StoreClosedError` after close and waits for the schema before the first statement. */
  readonly #open: (operation: string) => Promise<void>;
  /** The pool transactions run on, used for nothing else (see `runTransaction`). */
  readonly #transactions: () => Sql;

  constructor(sql: Sql, prefix: string, open: (operation: string) => Promise<void>, transactions: () => Sql) {
    this.#sql = sql;
    this.#prefix = prefix;
    this.#open = open;
    this.#transactions = transactions;
  }

  async load(name: string): Promise<ProjectionRecord | undefined> {
    await this.#open('load a projection');
    const rows = await guard(
      'load a projection',
      () => this.#sql<ProjectionRow[]>`
      SELECT p.checkpoint,
             CASE WHEN p.lease_until > clock_timestamp() THEN p.holder END AS holder,
             CASE WHEN p.holder IS NOT NULL AND p.lease_until > clock_timestamp()
                  THEN floor(extract(epoch FROM p.lease_until) * 1000)::float8 ELSE 0 END AS lease_until,
             p.generation::float8 AS generation, p.last_error
        FROM timebox_projection p WHERE p.prefix = ${this.#prefix} AND p.name = ${toStoredText(name)}`,
    );
    const row = rows[0];
    return row === undefined ? undefined : toRecord(name, row);
  }

  async claim(name: string, holder: string, leaseMs: number): Promise<{ held: boolean; record: ProjectionRecord }> {
    await this.#open('claim a projection');
    const rows = await guard(
      'claim a projection',
      () => this.#sql<(ProjectionRow & { held: boolean })[]>`
      SELECT held, checkpoint, holder, lease_until, generation, last_error
        FROM timebox_projection_claim(${this.#prefix}, ${toStoredText(name)}, ${toStoredText(holder)}, ${leaseMs})`,
    );
    const row = onlyRow('claim a projection', rows);
    return { held: row.held, record: toRecord(name, row) };
  }

  async save(name: string, holder: string, generation: number, update: SaveUpdate, leaseMs: number): Promise<ProjectionWrite> {
    await this.#open('save a projection');
    return guard('save a projection', () => saveProjection(this.#sql, this.#prefix, name, holder, generation, update, leaseMs));
  }

  /**
   * `save` in one transaction with `work` (see `PostgresBackend.saveProjectionWith`): the work runs
   * first, then the conditional save in the same transaction; both commit, or (save not `'ok'`,
   * work threw, connection lost) neither does. The save comes last so the lease is judged as the
   * transaction commits, and the projection row is locked only for that moment (the runner's
   * lease renewals, on other connections, do not queue behind a long batch).
   */
  async saveWith(
    name: string,
    holder: string,
    generation: number,
    update: SaveUpdate,
    leaseMs: number,
    work: (sql: TransactionSql) => Promise<void>,
  ): Promise<ProjectionWrite> {
    if (typeof name !== 'string' || name === '') throw new InvalidArgumentError('projection name', 'must be a non-empty string', name);
    if (typeof holder !== 'string' || holder === '') throw new InvalidArgumentError('holder', 'must be a non-empty string', holder);
    if (!Number.isSafeInteger(generation) || generation < 0) {
      throw new InvalidArgumentError('generation', 'must be a non-negative safe integer', generation);
    }
    if (!Number.isSafeInteger(leaseMs) || leaseMs <= 0)
      throw new InvalidArgumentError('leaseMs', 'must be a positive safe integer', leaseMs);
    if (update === null || typeof update !== 'object') throw new InvalidArgumentError('update', 'must be an object', update);
    if (typeof work !== 'function') throw new InvalidArgumentError('work', 'must be a function', work);
    await this.#open('save a projection with its transaction');
    let outcome: ProjectionWrite = 'ok';
    let workFailed = false;
    try {
      await runTransaction(this.#transactions(), async (tx) => {
        try {
          await work(tx);
        } catch (error) {
          workFailed = true;
          throw error;
        }
        outcome = await saveProjection(tx, this.#prefix, name, holder, generation, update, leaseMs);
        if (outcome !== 'ok') throw new Rollback('the checkpoint save was refused');
      });
    } catch (error) {
      if (error instanceof Rollback) return outcome;
      // The work's own failure (its statements included) comes back as it was; the driver's
      // (BEGIN, the save, COMMIT, a lost connection) as a PostgresBackendError.
      if (error instanceof TimeboxError || (workFailed && !isConnectionLoss(error))) throw error;
      throw new PostgresBackendError('save a projection with its transaction', error);
    }
    return 'ok';
  }

  async release(name: string, holder: string): Promise<void> {
    await this.#open('release a projection');
    await guard(
      'release a projection',
      () => this.#sql`
      UPDATE timebox_projection SET holder = NULL, lease_until = NULL
       WHERE prefix = ${this.#prefix} AND name = ${toStoredText(name)} AND holder = ${toStoredText(holder)}`,
    );
  }

  async reset(name: string, checkpoint: string | undefined): Promise<void> {
    await this.#open('reset a projection');
    const stored = checkpoint === undefined ? null : toStoredText(checkpoint);
    await guard(
      'reset a projection',
      () => this.#sql`
      INSERT INTO timebox_projection AS p (prefix, name, checkpoint, generation)
      VALUES (${this.#prefix}, ${toStoredText(name)}, ${stored}, 1)
      ON CONFLICT (prefix, name) DO UPDATE
        SET checkpoint = EXCLUDED.checkpoint, last_error = NULL, generation = p.generation + 1`,
    );
  }
}

/**
 * Calls `timebox_projection_save` on `sql` (the pool, or a transaction whose work must commit with
 * the checkpoint): stores the update if `holder` holds the lease and the generation matches.
 */
export async function saveProjection(
  sql: Pick<TransactionSql, 'unsafe'>,
  prefix: string,
  name: string,
  holder: string,
  generation: number,
  update: SaveUpdate,
  leaseMs: number,
): Promise<ProjectionWrite> {
  const setCheckpoint = update.checkpoint !== undefined;
  const checkpoint = update.checkpoint === undefined ? null : toStoredText(update.checkpoint);
  const errorMode = update.lastError === undefined ? 0 : update.lastError === null ? 2 : 1;
  const error = typeof update.lastError === 'string' ? toStoredText(update.lastError) : null;
  const rows = await sql.unsafe<{ outcome: ProjectionWrite }[]>(
    'SELECT timebox_projection_save($1, $2, $3, $4, $5, $6, $7, $8, $9) AS outcome',
    [prefix, toStoredText(name), toStoredText(holder), generation, setCheckpoint, checkpoint, errorMode, error, leaseMs],
  );
  return onlyRow('save a projection', rows).outcome;
}

function toRecord(name: string, row: ProjectionRow): ProjectionRecord {
  return Object.freeze({
    name,
    checkpoint: row.checkpoint === null ? undefined : fromStoredText(row.checkpoint),
    holder: row.holder === null ? undefined : fromStoredText(row.holder),
    leaseUntil: row.lease_until,
    generation: row.generation,
    lastError: row.last_error === null ? undefined : fromStoredText(row.last_error),
  });
}
