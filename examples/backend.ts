import type { Config, EventMap, Store } from '@timebox/core';
import { createMemoryStore } from '@timebox/memory';
import { createPostgresStore } from '@timebox/postgres';
import { createRedisStore } from '@timebox/redis';

/** Opens a store over one backend, given the store config. */
type StoreOpener = <M extends EventMap>(config: Config<M>) => Store<M> | Promise<Store<M>>;

/**
 * A three-member Raft cluster in this process (each member with its own WAL, LMDB state and TCP
 * listener on a free loopback port), with the store on the first member. Closing the store shuts
 * the three members down and removes their temporary folder; with `TIMEBOX_RAFT_DIR` the members
 * keep their data there instead, and a later run restarts from it.
 */
async function openRaftClusterStore<M extends EventMap>(config: Config<M>): Promise<Store<M>> {
  // Loaded on demand: the other backends never load LMDB's native module.
  const { startLocalCluster } = await import('@timebox/raft');
  const cluster = await startLocalCluster({ size: 3, dir: process.env.TIMEBOX_RAFT_DIR || undefined });
  return cluster.openStore(config, 0);
}

/** The store namespace the examples use on a shared server; `TIMEBOX_PREFIX` overrides it. */
const examplePrefix = (): string => process.env.TIMEBOX_PREFIX ?? 'timebox-example';

// The backends an example can run on, by the name TIMEBOX_BACKEND takes. Server backends read
// their address from the same variables as the tests (`TIMEBOX_REDIS_URL`,
// `TIMEBOX_POSTGRES_URL`), else use the server on the default local port. `raft` needs no server:
// it runs a whole cluster in this process (see openRaftClusterStore).
const OPENERS: Record<string, StoreOpener> = {
  memory: (config) => createMemoryStore(config),
  redis: (config) => createRedisStore(config, { url: process.env.TIMEBOX_REDIS_URL, prefix: examplePrefix() }),
  postgres: (config) => createPostgresStore(config, { url: process.env.TIMEBOX_POSTGRES_URL, prefix: examplePrefix() }),
  raft: openRaftClusterStore,
};

/** The backend names `TIMEBOX_BACKEND` accepts. */
export const SUPPORTED_BACKENDS: readonly string[] = Object.keys(OPENERS);

/**
 * Opens a store on the backend named by the `TIMEBOX_BACKEND` environment variable (default
 * `memory`) and waits until it can serve requests. The caller closes it.
 */
export async function openStore<M extends EventMap>(
  config: Config<M>,
  backend = process.env.TIMEBOX_BACKEND ?? 'memory',
): Promise<Store<M>> {
  // `Object.hasOwn` so that names such as "toString" are refused rather than found on the prototype.
  const open = Object.hasOwn(OPENERS, backend) ? OPENERS[backend] : undefined;
  if (open === undefined) {
    throw new Error(`unknown TIMEBOX_BACKEND ${JSON.stringify(backend)}: supported values are ${SUPPORTED_BACKENDS.join(', ')}`);
  }
  const store = await open(config);
  try {
    await store.ready();
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
  return store;
}
