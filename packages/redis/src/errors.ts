import { TimeboxError } from '@timebox/core';

/**
 * A Redis command failed: the server is unreachable, refused the credentials, or answered with
 * an error. `code` is `REDIS_AUTH_FAILED` for refused credentials, `REDIS_UNAVAILABLE` when the
 * connection is down, `REDIS_COMMAND_FAILED` otherwise; `cause` holds the ioredis error.
 *
 * When an append fails with `REDIS_UNAVAILABLE`, whether it was stored is unknown: read the
 * aggregate back (or let the executor's sequence check sort it out) before repeating it.
 */
export class RedisBackendError extends TimeboxError {
  constructor(operation: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    const code = classify(reason);
    super(code, `redis backend could not ${operation}: ${explain(code, reason)}`, { cause });
  }
}

function classify(reason: string): string {
  if (/WRONGPASS|NOAUTH|invalid password|invalid username-password|AUTH failed/i.test(reason)) return 'REDIS_AUTH_FAILED';
  if (
    /max retries per request|Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|Stream isn't writeable|connect ETIMEDOUT|CLUSTERDOWN|Failed to refresh slots cache|None of startup nodes/i.test(
      reason,
    )
  ) {
    return 'REDIS_UNAVAILABLE';
  }
  return 'REDIS_COMMAND_FAILED';
}

function explain(code: string, reason: string): string {
  if (code === 'REDIS_AUTH_FAILED') return `authentication failed, check the password (server said: ${reason})`;
  if (code === 'REDIS_UNAVAILABLE') return `the Redis server is unreachable or the connection was lost (${reason})`;
  return reason;
}

/** Runs a Redis call, turning driver errors into `RedisBackendError`s; Timebox errors pass through. */
export async function guard<T>(operation: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof TimeboxError) throw error;
    throw new RedisBackendError(operation, error);
  }
}
