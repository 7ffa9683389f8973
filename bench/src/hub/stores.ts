import type { Store } from '@timebox/core';
import { createPostgresStore } from '@timebox/postgres';
import { createRedisStore } from '@timebox/redis';

/** The backends whose hub delivers across processes. */
export type HubBackend = 'redis' | 'postgres';

/** Opens a store of `backend` under `prefix`, on the server the other benchmarks use. */
export function openHubStore(backend: HubBackend, prefix: string): Store {
  return backend === 'redis'
    ? createRedisStore({}, { url: process.env.TIMEBOX_REDIS_URL || 'redis://127.0.0.1:6379', prefix })
    : createPostgresStore(
        {},
        { url: process.env.TIMEBOX_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/postgres', prefix, maxConns: 8 },
      );
}

/** Wall-clock time in ms with sub-ms precision, comparable across processes on one machine. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}
