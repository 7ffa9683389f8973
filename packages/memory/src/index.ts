import { createStore, type Config, type EventMap, type Store } from '@timebox/core';
import { MemoryBackend, type MemoryBackendOptions } from './memory-backend.js';

export { MemoryBackend, type MemoryBackendOptions } from './memory-backend.js';
export { MemoryDatabase } from './database.js';
export { ArchiveQueue } from './archive-queue.js';

/** Opens a store over a new in-memory backend (or over `options.database`, shared). */
export function createMemoryStore<M extends EventMap = EventMap>(config: Config<M> = {}, options: MemoryBackendOptions = {}): Store<M> {
  return createStore<M>(new MemoryBackend(options), config);
}
