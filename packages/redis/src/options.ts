import { ConfigError, requirePositiveInteger } from '@timebox/core';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { FEED_PAGE } from './feed-reader.js';
import { MAX_SHARDS } from './slots.js';

/** Where and how the Redis backend stores its data. Every field is optional. */
export interface RedisBackendOptions {
  /** A `redis://` or `rediss://` URL. Cannot be combined with `host`/`port` or `client`. */
  readonly url?: string;
  /** Server host. Default `127.0.0.1`. */
  readonly host?: string;
  /** Server port. Default `6379`. */
  readonly port?: number;
  /** Password for `AUTH` (overrides one in `url`). */
  readonly password?: string;
  /** Database number, ≥ 0 (overrides one in `url`). Default 0. */
  readonly db?: number;
  /**
   * Further ioredis options for the connection the backend opens (TLS, Sentinel, timeouts…). They
   * override the backend's own connection defaults. `keyPrefix` is refused: use `prefix`.
   */
  readonly redisOptions?: RedisOptions;
  /**
   * A ready ioredis `Redis` or `Cluster` client to use instead of opening one. The backend then
   * does not own it: closing the store leaves it open, and the caller closes it. A `Cluster`
   * client needs `shard` or `shards`. Cannot be combined with `url`, `host`, `port`, `password`, `db` or
   * `redisOptions`.
   */
  readonly client?: Redis | Cluster;
  /** The store's namespace: every key starts with it. Non-empty. Default `timebox`. */
  readonly prefix?: string;
  /**
   * A Redis Cluster hash tag: every key of the store carries `{shard}`, so the whole store lives in
   * one slot and its multi-key scripts stay legal on a Cluster. May not hold `{`, `}` or `:`.
   * Cannot be combined with `shards`.
   */
  readonly shard?: string;
  /**
   * Spreads the store over this many hash tags (1 to 16384), so that the masters of a Redis
   * Cluster share its data: each aggregate belongs to one shard (CRC16 of its encoded ID, modulo
   * `shards`), and its keys, index entries and log entries live in that shard's slot, so every
   * append stays one atomic script. Queries, `readAll` and projections read every shard and merge.
   * The count is part of the store's identity: the same prefix with another count is another
   * (empty) store, and its checkpoints are refused. Also works on a single server. Cannot be
   * combined with `shard`. See the README for choosing the count.
   */
  readonly shards?: number;
  /** Consumer group that reads the archive stream. Default `timebox-archive`. */
  readonly archiveGroup?: string;
  /** This backend's consumer name in the group. Default: host name, process ID and a random part. */
  readonly archiveConsumer?: string;
  /**
   * How long (ms) an archive record may stay unacknowledged with a consumer that stopped renewing
   * its hold (it died or lost its connection) before another consumer reclaims it. A running
   * handler's consumer renews every third of this, so handlers may run longer. Default 30000.
   */
  readonly archiveClaimIdleMs?: number;
  /**
   * How long (ms) one blocking read of the archive stream waits before the consumer looks for
   * stale records to reclaim again. Default 1000.
   */
  readonly archiveBlockMs?: number;
  /**
   * Lets ioredis batch commands issued in the same tick into one write. Only for a connection
   * the backend opens. Default false: measured slower for this workload (see the README).
   */
  readonly autoPipelining?: boolean;
  /**
   * How many entries the feed stream keeps for subscribers (`store.subscribe`) that reconnect or
   * fall behind (an entry holds the appends of one script call to one shard: one or more): a
   * subscriber away for longer than this many entries is told of the gap. At least 1000; 0 turns
   * the feed off (appends publish nothing, `subscribe` is refused). Default 10000.
   */
  readonly feedRetention?: number;
}

/** Options after validation, with defaults filled in. */
export interface ResolvedOptions {
  readonly connection:
    | { readonly kind: 'client'; readonly client: Redis | Cluster }
    | { readonly kind: 'url'; readonly url: string; readonly redisOptions: RedisOptions }
    | { readonly kind: 'options'; readonly redisOptions: RedisOptions };
  readonly prefix: string;
  readonly shard: string | undefined;
  readonly shards: number | undefined;
  readonly archiveGroup: string;
  readonly archiveConsumer: string | undefined;
  readonly archiveClaimIdleMs: number;
  readonly archiveBlockMs: number;
  readonly feedRetention: number;
}

export const DEFAULT_PREFIX = 'timebox';
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 6379;
export const DEFAULT_ARCHIVE_GROUP = 'timebox-archive';
export const DEFAULT_FEED_RETENTION = 10_000;
export const DEFAULT_ARCHIVE_CLAIM_IDLE_MS = 30_000;
export const DEFAULT_ARCHIVE_BLOCK_MS = 1_000;

/**
 * How a connection the backend opens behaves when the server goes away: a command in flight or
 * issued while disconnected is rejected at the next failed reconnection attempt rather than
 * queued forever, and never silently re-sent (a re-sent append whose first copy ran would turn a
 * success into a conflict). The client keeps reconnecting in the background.
 */
export const CONNECTION_DEFAULTS: RedisOptions = {
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  enableOfflineQueue: true,
  lazyConnect: true,
  connectTimeout: 5_000,
  retryStrategy: (attempt: number) => Math.min(attempt * 100, 2_000),
};

const CLIENT_EXCLUSIVE = ['url', 'host', 'port', 'password', 'db', 'redisOptions', 'autoPipelining'] as const;

/** Validates `options` and fills in defaults; throws `ConfigError` naming the bad field. */
export function resolveOptions(options: RedisBackendOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new ConfigError('options', 'must be an object', options);
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  if (typeof prefix !== 'string' || prefix === '') throw new ConfigError('prefix', 'must be a non-empty string', prefix);
  const shard = options.shard;
  if (shard !== undefined && (typeof shard !== 'string' || shard === '' || /[{}:]/.test(shard))) {
    throw new ConfigError('shard', 'must be a non-empty string without "{", "}" or ":"', shard);
  }
  const shards = options.shards;
  if (shards !== undefined) {
    if (typeof shards !== 'number' || !Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS) {
      throw new ConfigError('shards', `must be a whole number from 1 to ${MAX_SHARDS}`, shards);
    }
    if (shard !== undefined) {
      throw new ConfigError('shards', 'cannot be combined with shard (shard keeps a store in one slot; shards spreads it)', shards);
    }
  }
  const archiveGroup = options.archiveGroup ?? DEFAULT_ARCHIVE_GROUP;
  if (typeof archiveGroup !== 'string' || archiveGroup === '') {
    throw new ConfigError('archiveGroup', 'must be a non-empty string', archiveGroup);
  }
  const archiveConsumer = options.archiveConsumer;
  if (archiveConsumer !== undefined && (typeof archiveConsumer !== 'string' || archiveConsumer === '')) {
    throw new ConfigError('archiveConsumer', 'must be a non-empty string', archiveConsumer);
  }
  const archiveClaimIdleMs = options.archiveClaimIdleMs ?? DEFAULT_ARCHIVE_CLAIM_IDLE_MS;
  requirePositiveInteger('archiveClaimIdleMs', archiveClaimIdleMs);
  const archiveBlockMs = options.archiveBlockMs ?? DEFAULT_ARCHIVE_BLOCK_MS;
  requirePositiveInteger('archiveBlockMs', archiveBlockMs);
  const feedRetention = options.feedRetention ?? DEFAULT_FEED_RETENTION;
  if (typeof feedRetention !== 'number' || !Number.isSafeInteger(feedRetention) || (feedRetention !== 0 && feedRetention < FEED_PAGE)) {
    throw new ConfigError('feedRetention', `must be 0 (no feed) or an integer ≥ ${FEED_PAGE}`, feedRetention);
  }
  const common = { prefix, shard, shards, archiveGroup, archiveConsumer, archiveClaimIdleMs, archiveBlockMs, feedRetention };

  if (options.client !== undefined) {
    for (const field of CLIENT_EXCLUSIVE) {
      if (options[field] !== undefined)
        throw new ConfigError(field, 'cannot be combined with client (configure the client instead)', options[field]);
    }
    const client = options.client;
    if (client === null || typeof client !== 'object' || typeof client.defineCommand !== 'function') {
      throw new ConfigError('client', 'must be an ioredis Redis or Cluster client', client);
    }
    if (client.isCluster && shard === undefined && shards === undefined) {
      throw new ConfigError(
        'shard',
        'or shards is required with a Redis Cluster client, so that each script touches keys of one slot only',
        shard,
      );
    }
    refuseKeyPrefix('client.options.keyPrefix', client.options.keyPrefix);
    return { connection: { kind: 'client', client }, ...common };
  }

  const redisOptions = options.redisOptions ?? {};
  if (redisOptions === null || typeof redisOptions !== 'object') throw new ConfigError('redisOptions', 'must be an object', redisOptions);
  refuseKeyPrefix('redisOptions.keyPrefix', redisOptions.keyPrefix);
  const overrides: RedisOptions = {};
  if (options.password !== undefined) {
    if (typeof options.password !== 'string') throw new ConfigError('password', 'must be a string', options.password);
    overrides.password = options.password;
  }
  if (options.db !== undefined) {
    if (typeof options.db !== 'number' || !Number.isSafeInteger(options.db) || options.db < 0) {
      throw new ConfigError('db', 'must be an integer ≥ 0', options.db);
    }
    overrides.db = options.db;
  }
  const autoPipelining = options.autoPipelining ?? false;
  if (typeof autoPipelining !== 'boolean') throw new ConfigError('autoPipelining', 'must be a boolean', autoPipelining);
  const merged: RedisOptions = { ...CONNECTION_DEFAULTS, enableAutoPipelining: autoPipelining, ...redisOptions, ...overrides };

  if (options.url !== undefined) {
    if (options.host !== undefined) throw new ConfigError('host', 'cannot be combined with url', options.host);
    if (options.port !== undefined) throw new ConfigError('port', 'cannot be combined with url', options.port);
    if (typeof options.url !== 'string' || !/^rediss?:\/\/./.test(options.url)) {
      throw new ConfigError('url', 'must be a redis:// or rediss:// URL', options.url);
    }
    return { connection: { kind: 'url', url: withoutOverrides(options.url, overrides), redisOptions: merged }, ...common };
  }
  const host = options.host ?? redisOptions.host ?? DEFAULT_HOST;
  if (typeof host !== 'string' || host === '') throw new ConfigError('host', 'must be a non-empty string', host);
  const port = options.port ?? redisOptions.port ?? DEFAULT_PORT;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new ConfigError('port', 'must be an integer from 1 to 65535', port);
  }
  return { connection: { kind: 'options', redisOptions: { ...merged, host, port } }, ...common };
}

/** Drops from `url` what explicit fields override: ioredis would let the URL win. */
function withoutOverrides(url: string, overrides: RedisOptions): string {
  if (overrides.password === undefined && overrides.db === undefined) return url;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError('url', 'must be a valid redis:// or rediss:// URL', url);
  }
  if (overrides.password !== undefined) parsed.password = '';
  if (overrides.db !== undefined) parsed.pathname = '';
  return parsed.toString();
}

function refuseKeyPrefix(field: string, keyPrefix: unknown): void {
  // ioredis would prefix the keys a script declares but not those the script derives itself.
  if (keyPrefix !== undefined && keyPrefix !== '') {
    throw new ConfigError(field, 'is not supported (use the backend option prefix instead)', keyPrefix);
  }
}
