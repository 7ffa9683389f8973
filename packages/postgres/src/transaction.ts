import type { Sql, TransactionSql } from 'postgres';
import { isConnectionLoss as isDriverConnectionLoss, PostgresBackendError } from './errors.js';

/** A connection error from the driver, or one of ours wrapping it (a reply cut off, say). */
function isConnectionLoss(error: unknown): boolean {
  return isDriverConnectionLoss(error) || (error instanceof PostgresBackendError && error.connectionLost);
}

/** Rejects a statement that would go to a connection already known to be dead. */
function lostConnection(): Error {
  return Object.assign(new Error('the transaction connection was lost; no further statement was sent'), { code: 'CONNECTION_CLOSED' });
}

/** Whether the transaction's connection died; set as soon as any sign of it arrives. */
interface ConnectionWatch {
  lost: boolean;
}

/**
 * Runs `body` in a transaction through postgres.js `sql.begin`, never letting the driver send a
 * statement on a connection that already died. `sql` must be a pool used for transactions only.
 *
 * Two hazards of postgres.js 3.4.9 shape this:
 *  - On a pool shared with other queries, `sql.begin` can put its BEGIN behind another caller's
 *    query on a busy connection; when that fills the connection's pipeline (always, with
 *    `max_pipeline: 1`, which the backend's own pools use), the driver never reserves the
 *    connection: `sql.begin` fails with a TypeError, an uncaught TypeError follows, and the
 *    connection goes back to the pool inside the open transaction, so later callers' statements
 *    run in it and never commit. A pool used only by `sql.begin` never has a busy connection (each
 *    is idle or reserved by one transaction), so BEGIN always goes to a free one.
 *  - When the connection of a transaction dies, the driver sends its ROLLBACK (or COMMIT, or
 *    whatever the body sends next) on the dead connection, and its deferred socket write throws a
 *    `TypeError` from a timer: an uncaught exception that ends the process. (`sql.reserve()` has
 *    the same write path, and hangs on a pool that has to open a connection for it.) So:
 *    - when the body fails because the connection was lost (or after it was lost), the function
 *      given to `sql.begin` never settles: the driver then sends neither ROLLBACK nor COMMIT, and
 *      `sql.begin` itself rejects with `CONNECTION_CLOSED` (it watches the connection's close);
 *      the server rolled the transaction back when the session ended;
 *    - the `TransactionSql` the body gets refuses (rejects, sending nothing) every statement made
 *      after the loss was noticed: noticed the moment any statement of the transaction fails with
 *      a connection error (before the caller's own handler runs) or `sql.begin` reports the close.
 *    A statement the body started before the loss, and that was still queued in the driver, may
 *    never settle; nothing waits for it, since `sql.begin` has already rejected.
 */
export async function runTransaction<T>(sql: Sql, body: (tx: TransactionSql) => Promise<T>): Promise<T> {
  const watch: ConnectionWatch = { lost: false };
  const transaction = sql.begin(async (tx) => {
    let result: T;
    try {
      result = await body(guardSql(tx, watch));
    } catch (error) {
      if (watch.lost || isConnectionLoss(error)) return new Promise<never>(() => undefined);
      throw error;
    }
    if (watch.lost) return new Promise<never>(() => undefined);
    return result;
  });
  try {
    return (await transaction) as T;
  } catch (error) {
    watch.lost ||= isConnectionLoss(error);
    throw error;
  }
}

/** Wraps a transaction's `sql` (or a savepoint's) so that no statement reaches a dead connection. */
function guardSql<S extends object>(target: S, watch: ConnectionWatch): S {
  return new Proxy(target, {
    apply(fn, thisArg, args) {
      return guardResult(Reflect.apply(fn as (...a: unknown[]) => unknown, thisArg, args), watch);
    },
    get(obj, key) {
      const value: unknown = Reflect.get(obj, key);
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      if (key === 'savepoint') {
        return (...args: unknown[]) => {
          if (watch.lost) return Promise.reject(lostConnection());
          const last = args.length - 1;
          const inner = args[last] as (tx: object) => unknown;
          // Same rule as the outer body: after a loss, never let the driver roll the savepoint back.
          args[last] = async (tx: object) => {
            try {
              const result = await inner(guardSql(tx, watch));
              if (watch.lost) return new Promise<never>(() => undefined);
              return result;
            } catch (error) {
              if (watch.lost || isConnectionLoss(error)) {
                watch.lost = true;
                return new Promise<never>(() => undefined);
              }
              throw error;
            }
          };
          return method.apply(obj, args);
        };
      }
      if (key === 'prepare') {
        return () => {
          throw new TypeError('a projection transaction cannot be prepared (two-phase commit): it must commit with its checkpoint');
        };
      }
      return (...args: unknown[]) => guardResult(method.apply(obj, args), watch);
    },
  });
}

/** Statements (postgres.js queries are promises, run when awaited) are guarded; fragments pass. */
function guardResult(value: unknown, watch: ConnectionWatch): unknown {
  return value instanceof Promise ? guardQuery(value, watch) : value;
}

/**
 * A postgres.js query runs when first awaited (`then`) or executed; this wrapper refuses to run it
 * once the connection is known to be lost, and marks the loss the moment it fails with one. It is
 * still the query object (same prototype, same fields), so it also works as a fragment of another query.
 */
function guardQuery(query: Promise<unknown>, watch: ConnectionWatch): Promise<unknown> {
  const proxy: Promise<unknown> = new Proxy(query, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key);
      if (key === 'then') {
        return (onFulfilled?: (value: unknown) => unknown, onRejected?: (reason: unknown) => unknown) => {
          if (watch.lost) return Promise.reject(lostConnection()).then(onFulfilled, onRejected);
          return target.then(onFulfilled, (error: unknown) => {
            if (isConnectionLoss(error)) watch.lost = true;
            if (onRejected) return onRejected(error);
            throw error;
          });
        };
      }
      if (key === 'catch') return (onRejected?: (reason: unknown) => unknown) => proxy.then(undefined, onRejected);
      if (key === 'finally') {
        return (onFinally?: () => void) =>
          proxy.then(
            (result) => {
              onFinally?.();
              return result;
            },
            (error: unknown) => {
              onFinally?.();
              throw error;
            },
          );
      }
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => {
        // execute, cursor, forEach, describe, raw, values, simple, readable, writable…
        if (watch.lost && ['execute', 'cursor', 'forEach', 'describe', 'readable', 'writable'].includes(String(key))) {
          throw lostConnection();
        }
        const result = method.apply(target, args);
        return result === target ? proxy : result;
      };
    },
  });
  return proxy;
}
