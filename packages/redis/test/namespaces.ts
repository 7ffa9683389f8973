import { randomUUID } from 'node:crypto';
import type { ConformanceNamespace } from '@timebox/core/conformance';
import type { Cluster, Redis } from 'ioredis';
import { deleteStoreKeys, RedisBackend, type RedisBackendOptions } from '../src/index.js';

/** A fresh prefix no other test uses. */
export function freshPrefix(label = 'test'): string {
  return `tb-${label}-${randomUUID()}`;
}

/**
 * A conformance namespace: a fresh prefix (and optional shard) whose backends share `options`,
 * disposed by deleting its keys through `admin`.
 */
export function namespaceOver(admin: Redis | Cluster, options: RedisBackendOptions): ConformanceNamespace & { prefix: string } {
  const prefix = options.prefix ?? freshPrefix();
  return {
    prefix,
    connect: () => new RedisBackend({ ...options, prefix }),
    dispose: async () => {
      await deleteStoreKeys(admin, { prefix, shard: options.shard, shards: options.shards });
    },
  };
}
