/**
 * The PostgreSQL backend for Timebox, through postgres.js.
 *
 * @packageDocumentation
 */
import { createStore, type Config, type EventMap, type Store } from '@timebox/core';
import { PostgresBackend } from './postgres-backend.js';
import type { PostgresBackendOptions } from './options.js';

export { PostgresBackend } from './postgres-backend.js';
export type { PostgresProjections, SaveUpdate } from './projections.js';
export {
  DEFAULT_APPLICATION_NAME,
  DEFAULT_ARCHIVE_LEASE_MS,
  DEFAULT_MAX_CONNS,
  DEFAULT_URL,
  type PostgresBackendOptions,
  type PostgresDriverOptions,
} from './options.js';
export { PostgresBackendError } from './errors.js';
export { SCHEMA_VERSION, SchemaVersionError, UnreleasedSchemaError } from './schema.js';

/**
 * Opens a store over a new `PostgresBackend`. Config is validated at once; the connection and
 * schema are made on `store.ready()` or the first call.
 *
 * @example
 * ```ts
 * const store = createPostgresStore({ trimEvents: true }, { url: process.env.DATABASE_URL, prefix: 'orders' });
 * await store.ready();
 * ```
 */
export function createPostgresStore<M extends EventMap = EventMap>(config: Config<M>, options: PostgresBackendOptions): Store<M> {
  return createStore<M>(new PostgresBackend(options), config);
}
