import type { Store } from '@timebox/core';
import { createPostgresStore } from '@timebox/postgres';
import { createRedisStore } from '@timebox/redis';

/** The backends whose hub delivers across processes. */
export type HubBackend = 'redis' | 'postgres';

/**
 * Where a hub benchmark's stores live: Redis on the server the other benchmarks use (a fresh
 * prefix isolates it), PostgreSQL in a database made for the measurement (`postgresUrl`).
 */
export interface HubTarget {
  readonly backend: HubBackend;
  readonly prefix: string;
  readonly postgresUrl?: string;
}

/** Opens a store on `target`. */
export function openHubStore(target: HubTarget): Store {
  const { backend, prefix, postgresUrl } = target;
  if (backend === 'redis') return createRedisStore({}, { url: process.env.TIMEBOX_REDIS_URL || 'redis://127.0.0.1:6379', prefix });
  if (postgresUrl === undefined) throw new Error('a PostgreSQL hub store needs the URL of its throwaway database');
  return createPostgresStore({}, { url: postgresUrl, prefix, maxConns: 8 });
}

/** Wall-clock time in ms with sub-ms precision, comparable across processes on one machine. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}
