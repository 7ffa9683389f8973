import type { Cluster, Redis } from 'ioredis';
import { StoreKeys } from './store-keys.js';

/**
 * Deletes every key of the store named by `prefix` (and `shard` or `shards`, as the store was
 * opened), found with SCAN (never KEYS),
 * on every master of a Cluster. Not atomic: stop the store's writers first. Returns the number of
 * keys deleted.
 */
export async function deleteStoreKeys(
  client: Redis | Cluster,
  store: { readonly prefix?: string; readonly shard?: string; readonly shards?: number } = {},
): Promise<number> {
  const pattern = new StoreKeys(store).pattern;
  const nodes: Redis[] = client.isCluster ? (client as Cluster).nodes('master') : [client as Redis];
  let deleted = 0;
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length === 0) continue;
      // One key per UNLINK, pipelined, is legal on a Cluster node whatever the keys' slots.
      const pipeline = node.pipeline();
      for (const key of keys) pipeline.unlink(key);
      for (const [error, count] of (await pipeline.exec()) ?? []) {
        if (error) throw error;
        deleted += count as number;
      }
    } while (cursor !== '0');
  }
  return deleted;
}
