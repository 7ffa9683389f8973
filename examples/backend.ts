import type { Config, EventMap, Store } from '@timebox/core';
import { createMemoryStore } from '@timebox/memory';

/** Opens a store over one backend, given the store config. */
type StoreOpener = <M extends EventMap>(config: Config<M>) => Store<M>;

// The backends an example can run on, by the name TIMEBOX_BACKEND takes.
// Only `memory` exists today; `redis`, `postgres` and `raft` will be added here as their
// packages are built, each reading its connection settings from its own environment variables.
const OPENERS: Record<string, StoreOpener> = {
  memory: (config) => createMemoryStore(config),
};

/** The backend names `TIMEBOX_BACKEND` accepts. */
export const SUPPORTED_BACKENDS: readonly string[] = Object.keys(OPENERS);

/**
 * Opens a store on the backend named by the `TIMEBOX_BACKEND` environment variable (default
 * `memory`) and waits until it can serve requests. The caller closes it.
 */
export async function openStore<M extends EventMap>(config: Config<M>, backend = process.env.TIMEBOX_BACKEND ?? 'memory'): Promise<Store<M>> {
  // `Object.hasOwn` so that names such as "toString" are refused rather than found on the prototype.
  const open = Object.hasOwn(OPENERS, backend) ? OPENERS[backend] : undefined;
  if (open === undefined) {
    throw new Error(`unknown TIMEBOX_BACKEND ${JSON.stringify(backend)}: supported values are ${SUPPORTED_BACKENDS.join(', ')}`);
  }
  const store = open(config);
  await store.ready();
  return store;
}
