import postgres, { type Options, type PostgresType, type Sql } from 'postgres';
import { ConfigError, requirePositiveInteger } from '@timebox/core';
import { socketOption } from './driver-socket.js';
import { toStoredText } from './text-codec.js';

/**
 * postgres.js options passed through unchanged (TLS, timeouts, connection parameters, …), except
 * `max` (use `maxConns`) and `fetch_types` (always off: see the README's failure behaviour).
 */
export type PostgresDriverOptions = Omit<Options<Record<string, PostgresType>>, 'max' | 'fetch_types'>;

/** Options of `PostgresBackend` and `createPostgresStore`. */
export interface PostgresBackendOptions {
  /**
   * The store's namespace: every row the store writes carries it, so stores with different
   * prefixes share the tables without seeing each other. Required, non-empty; any text.
   */
  readonly prefix: string;
  /** Connection URL. Default `postgres://localhost:5432/postgres`. Not allowed with `sql`. */
  readonly url?: string;
  /** The most connections the backend's pool opens. Default 10; must be > 0. Not allowed with `sql`. */
  readonly maxConns?: number;
  /**
   * Further postgres.js options, passed through (for example `ssl`, `connect_timeout`,
   * `connection: { application_name }`). Not allowed with `sql`.
   */
  readonly postgres?: PostgresDriverOptions;
  /**
   * An existing postgres.js instance to run on instead of opening a pool. The backend then
   * neither sizes nor ends it: `close()` leaves it open for its owner.
   */
  readonly sql?: Sql<Record<string, unknown>>;
  /**
   * How long (ms) an archive record stays leased to a consumer that stopped renewing the lease
   * (it died or lost its connection) before the record is offered to another consumer. A running
   * handler's consumer renews every third of this. Default 30000; must be > 0.
   */
  readonly archiveLeaseMs?: number;
}

export const DEFAULT_URL = 'postgres://localhost:5432/postgres';
export const DEFAULT_MAX_CONNS = 10;
export const DEFAULT_ARCHIVE_LEASE_MS = 30_000;
/** The `application_name` the backend's own pool reports unless `postgres.connection` sets one. */
export const DEFAULT_APPLICATION_NAME = 'timebox';

// Set on every pool the backend opens, whatever `options.postgres` says. With `fetch_types` on
// (the driver's default), postgres.js 3.4 runs a catalog query as the first statement of every
// new connection and drops its promise: if the server ends the connection during that query
// (pg_terminate_backend, a failover, statement_timeout) the rejection is unhandled and Node
// exits (porsager/postgres#1192, #1205, #1223). The backend sends and reads no SQL arrays (batches
// and event lists travel as JSON), so it needs no array types.
const OWN_POOL_FIXED = { fetch_types: false } as const;

// Defaults for a pool the backend opens; `options.postgres` overrides them.
const OWN_POOL_DEFAULTS = {
  onnotice: () => undefined,
  // postgres.js 3.4 can leave pipelined queries unsettled forever when the server ends the
  // connection under them (pg_terminate_backend, a failover); one query per connection at a
  // time makes every call settle, and costs little since the pool spreads calls anyway.
  // (An option the driver reads but its type declarations omit.)
  max_pipeline: 1,
  // The driver's default reconnect delay grows to 20 s after repeated failures; cap it at 2 s so
  // a pool comes back soon after a failover or a burst of terminated sessions.
  backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 2) * (0.5 + Math.random() / 2),
  // The driver's default is 30 s. A connection postgres.js 3.4.9 wedged (see driver-socket.ts:
  // after a close that cancelled its pending write it sends no short message again) stalls each
  // reconnect until this passes, and the call waiting on it then fails instead of hanging.
  connect_timeout: 10,
};

export interface ResolvedOptions {
  /** The prefix as stored (see `toStoredText`). */
  readonly storedPrefix: string;
  readonly archiveLeaseMs: number;
  /** The driver instance and whether the backend owns (and so ends) it. */
  readonly sql: Sql;
  readonly ownsSql: boolean;
  /**
   * Opens the pool transactional projections run their transactions on (see `runTransaction`):
   * configured like `sql`, used for nothing else, so `sql.begin` there never shares a connection
   * with other callers' queries. The backend owns (and ends) it.
   */
  readonly openTransactionSql: () => Sql;
  /**
   * Opens an instance of one connection, configured like `sql`, for a job that must never queue
   * behind the appends waiting for the pool, nor hold one of the pool's connections while it
   * waits: announcing appends to subscribers (`FeedNotifier`) and reading the feed (`FeedReader`,
   * whose settled reads may wait server-side for appends in flight). The backend owns (and ends) it.
   */
  readonly openConnection: () => Sql;
  /**
   * How many connections of their own appends go through (see `AppendBatcher`); 0 when the pool
   * is too small to spare them. An owned pool gives up that many of its `maxConns` to them; a
   * caller's instance is left as it is, and they come on top.
   */
  readonly appendConnections: number;
}

/**
 * Connections appends get of their own (see `AppendBatcher`), out of a pool of `maxConns`: none
 * below `MIN_POOL_FOR_BATCHING`, where each append takes a pool connection as other calls do.
 */
function appendConnectionsOf(maxConns: number): number {
  return maxConns >= MIN_POOL_FOR_BATCHING ? APPEND_CONNECTIONS : 0;
}

/** The smallest pool that gives appends connections of their own: a smaller one would leave every other call too few. */
const MIN_POOL_FOR_BATCHING = 6;

/** Connections appends go through: two, so the server runs one statement while the client handles the other's reply. */
const APPEND_CONNECTIONS = 2;

/** Validates options and opens (lazily: postgres.js connects on first query) the pool. */
export function resolveOptions(options: PostgresBackendOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new ConfigError('options', 'must be an object', options);
  const { prefix, url, maxConns, sql, archiveLeaseMs = DEFAULT_ARCHIVE_LEASE_MS } = options;
  if (typeof prefix !== 'string' || prefix.length === 0) throw new ConfigError('prefix', 'must be a non-empty string', prefix);
  requirePositiveInteger('archiveLeaseMs', archiveLeaseMs);
  if (url !== undefined && (typeof url !== 'string' || url.length === 0)) throw new ConfigError('url', 'must be a non-empty string', url);
  if (maxConns !== undefined) requirePositiveInteger('maxConns', maxConns);
  const driverOptions = options.postgres;
  if (driverOptions !== undefined && (driverOptions === null || typeof driverOptions !== 'object')) {
    throw new ConfigError('postgres', 'must be an object of postgres.js options', driverOptions);
  }
  if (sql !== undefined) {
    if (typeof sql !== 'function' || typeof (sql as { unsafe?: unknown }).unsafe !== 'function') {
      throw new ConfigError('sql', 'must be a postgres.js instance (the function postgres() returns)', sql);
    }
    for (const [field, value] of [
      ['url', url],
      ['maxConns', maxConns],
      ['postgres', driverOptions],
    ] as const) {
      if (value !== undefined) throw new ConfigError(field, 'cannot be combined with sql (configure that instance instead)', value);
    }
    const callers = sql as Sql;
    // A second instance over the caller's parsed options: same server, credentials and settings,
    // its own connections (postgres.js takes parsed options as they are).
    const parsed = callers.options as unknown as Options<Record<string, PostgresType>>;
    // Unless the caller gave a socket option, ours (see `socketOption`), which their own instance lacks.
    const own = { ...parsed, socket: (parsed as { socket?: unknown }).socket ?? socketOption(undefined, parsed) } as typeof parsed;
    const openTransactionSql = (): Sql => postgres(own);
    const openConnection = (): Sql => postgres({ ...own, max: 1 });
    return {
      storedPrefix: toStoredText(prefix),
      archiveLeaseMs,
      sql: callers,
      ownsSql: false,
      openTransactionSql,
      openConnection,
      appendConnections: APPEND_CONNECTIONS,
    };
  }
  const poolSize = maxConns ?? DEFAULT_MAX_CONNS;
  const appendConnections = appendConnectionsOf(poolSize);
  const config = {
    ...OWN_POOL_DEFAULTS,
    socket: socketOption(url ?? DEFAULT_URL, driverOptions),
    ...driverOptions,
    connection: { application_name: DEFAULT_APPLICATION_NAME, ...driverOptions?.connection },
    max: poolSize,
    ...OWN_POOL_FIXED,
  };
  const target = url ?? DEFAULT_URL;
  const owned = postgres(target, { ...config, max: poolSize - appendConnections });
  const openTransactionSql = () => postgres(target, config);
  const openConnection = () => postgres(target, { ...config, max: 1 });
  return {
    storedPrefix: toStoredText(prefix),
    archiveLeaseMs,
    sql: owned,
    ownsSql: true,
    openTransactionSql,
    openConnection,
    appendConnections,
  };
}
