import { TimeboxError } from '@timebox/core';

// postgres.js codes for a connection that went away, and SQLSTATE classes 08 (connection
// exception) and 57P0x (the server shut the session down, e.g. pg_terminate_backend).
const CONNECTION_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
]);
// Of those, the ones that mean no connection was ever made, so the call was never sent.
// Our own code for a statement that always returns a row and came back with none: seen once under
// pg_terminate_backend storms, it can only mean the reply was cut off, so it counts as a loss.
const NO_RESULT_ROW = 'TIMEBOX_NO_RESULT_ROW';
CONNECTION_CODES.add(NO_RESULT_ROW);
const UNREACHABLE_CODES = new Set(['CONNECT_TIMEOUT', 'ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH']);

/** True when `error` says the connection was lost or refused, rather than a statement failing. */
export function isConnectionLoss(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  return CONNECTION_CODES.has(code) || code.startsWith('08') || code.startsWith('57P0');
}

/**
 * A PostgreSQL call failed. `cause` holds the driver's error. `code` is `POSTGRES_UNREACHABLE`
 * when no connection could be made (refused, unknown host, connect timeout: nothing was sent),
 * `POSTGRES_CONNECTION_LOST` when the connection broke during the call, `POSTGRES_ERROR`
 * otherwise. `connectionLost` is true for both connection cases. When the connection broke
 * during the call a read can simply be retried, but a write may or may not
 * have committed (the server rolls back an unfinished transaction, yet the reply to a finished
 * one can be lost), so read the aggregate back before retrying a write.
 */
export class PostgresBackendError extends TimeboxError {
  readonly connectionLost: boolean;

  constructor(operation: string, cause: unknown) {
    const connectionLost = isConnectionLoss(cause);
    const unreachable = UNREACHABLE_CODES.has(String((cause as { code?: unknown } | null)?.code));
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      unreachable ? 'POSTGRES_UNREACHABLE' : connectionLost ? 'POSTGRES_CONNECTION_LOST' : 'POSTGRES_ERROR',
      unreachable
        ? `postgres: ${operation} failed: the server cannot be reached (${reason}); nothing was sent`
        : connectionLost
          ? `postgres: ${operation} failed because the connection was lost (${reason}); a write may or may not have committed`
          : `postgres: ${operation} failed: ${reason}`,
      { cause },
    );
    this.connectionLost = connectionLost;
  }
}

/** Runs a driver call, wrapping a driver failure in `PostgresBackendError`; Timebox errors pass. */
export async function guard<T>(operation: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof TimeboxError) throw error;
    throw new PostgresBackendError(operation, error);
  }
}

/**
 * The one row a statement always returns. When the driver hands back none (a reply cut off by a
 * lost connection), throws a `PostgresBackendError` with `connectionLost`: the outcome is unknown.
 */
export function onlyRow<T>(operation: string, rows: readonly T[] & { readonly command?: string }): T {
  try {
    return replyRow(rows);
  } catch (cause) {
    throw new PostgresBackendError(operation, cause);
  }
}

/**
 * `onlyRow` for code inside a `guard`: the one row, or else a driver-like error that
 * `isConnectionLoss` recognizes (and `guard` turns into a `PostgresBackendError` with
 * `connectionLost`).
 */
export function replyRow<T>(rows: readonly T[] & { readonly command?: string }): T {
  const row = rows[0];
  if (row !== undefined) return row;
  throw Object.assign(new Error(`the server sent no result row (command ${String(rows.command)})`), { code: NO_RESULT_ROW });
}

/** `replyRow` for a statement that returns one row per input: all `count` rows, or the same error. */
export function replyRows<T>(rows: readonly T[] & { readonly command?: string }, count: number): readonly T[] {
  if (rows.length === count) return rows;
  throw Object.assign(new Error(`the server sent ${rows.length} of ${count} result rows (command ${String(rows.command)})`), {
    code: NO_RESULT_ROW,
  });
}
