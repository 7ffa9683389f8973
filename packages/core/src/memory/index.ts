/**
 * The in-process backend: for tests and single-process programs; the data lives only as long as
 * the process. `@timebox/memory` re-exports this entry point unchanged.
 *
 * @packageDocumentation
 */
import type { Config } from '../config.js';
import type { EventMap } from '../event.js';
import { createStore, type Store } from '../store.js';
import { MemoryBackend, type MemoryBackendOptions } from './memory-backend.js';

export { MemoryBackend, type MemoryBackendOptions } from './memory-backend.js';
export { MemoryDatabase } from './database.js';
export { ArchiveQueue } from './archive-queue.js';

/** Opens a store over a new in-memory backend (or over `options.database`, shared). */
export function createMemoryStore<M extends EventMap = EventMap>(config: Config<M> = {}, options: MemoryBackendOptions = {}): Store<M> {
  return createStore<M>(new MemoryBackend(options), config);
}
