/**
 * The in-process backend for Timebox. Its implementation lives in `@timebox/core/memory` (so
 * core's own test helpers can use it); this package re-exports it unchanged.
 *
 * @packageDocumentation
 */
export { ArchiveQueue, createMemoryStore, MemoryBackend, MemoryDatabase, type MemoryBackendOptions } from '@timebox/core/memory';
