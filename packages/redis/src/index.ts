/**
 * The Redis and Valkey backend for Timebox, through ioredis.
 *
 * @packageDocumentation
 */
import { createStore, type Config, type EventMap, type Store } from '@timebox/core';
import { RedisBackend } from './redis-backend.js';
import type { RedisBackendOptions } from './options.js';

export { RedisBackend } from './redis-backend.js';
export { RedisBackendError } from './errors.js';
export { KeySpace } from './key-space.js';
export { deleteStoreKeys } from './delete-store-keys.js';
export {
  CONNECTION_DEFAULTS,
  DEFAULT_ARCHIVE_BLOCK_MS,
  DEFAULT_ARCHIVE_CLAIM_IDLE_MS,
  DEFAULT_ARCHIVE_GROUP,
  DEFAULT_HOST,
  DEFAULT_PORT,
  DEFAULT_PREFIX,
  type RedisBackendOptions,
} from './options.js';

/**
 * Opens a store over Redis. Throws `ConfigError` for invalid `config` or `options`; connects
 * lazily, so await `store.ready()` to find out early whether the server answers.
 *
 * @example
 * ```ts
 * const store = createRedisStore({ trimEvents: true }, { url: 'redis://127.0.0.1:6379', prefix: 'orders' });
 * await store.ready();
 * ```
 */
export function createRedisStore<M extends EventMap = EventMap>(config: Config<M> = {}, options: RedisBackendOptions = {}): Store<M> {
  return createStore<M>(new RedisBackend(options), config);
}
