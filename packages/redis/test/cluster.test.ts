import { randomUUID } from 'node:crypto';
import { describeConformance } from '@timebox/core/conformance';
import { Redis, type Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisStore, deleteStoreKeys, KeySpace } from '../src/index.js';
import { ThrowawayCluster } from './cluster.js';
import { freshPrefix, namespaceOver } from './namespaces.js';

const CLAIM_IDLE_MS = 200;
let cluster: ThrowawayCluster;
let client: Cluster;

beforeAll(async () => {
  cluster = await ThrowawayCluster.start();
  client = cluster.client();
}, 90_000);

afterAll(async () => {
  client?.disconnect();
  await cluster?.stop();
});

describeConformance({
  name: 'redis cluster (shard)',
  capabilities: { archive: true, archiveRedeliveryMs: CLAIM_IDLE_MS, hub: true, readSide: true },
  // Each namespace is a store on its own random shard, so the suite's stores spread over the masters.
  namespace: () => namespaceOver(client, { client, shard: `s-${randomUUID()}`, archiveClaimIdleMs: CLAIM_IDLE_MS, archiveBlockMs: 100 }),
});

/** The port of the master serving `slot`, from CLUSTER SLOTS. */
async function masterPortOf(slot: number): Promise<number> {
  const ranges = await client.cluster('SLOTS');
  const range = ranges.find(([from, to]) => slot >= from && slot <= to);
  if (range === undefined || range[2] === undefined) throw new Error(`no master serves slot ${slot}`);
  return range[2][1];
}

describe('redis cluster: stores on different shards', () => {
  it('lands each shard’s keys, all of them, on one master, and different shards on different masters', async () => {
    // Pick one shard per master, by asking the cluster which slot each candidate hashes to.
    const shardsByMaster = new Map<number, string>();
    for (let n = 0; shardsByMaster.size < cluster.nodes.length && n < 1000; n++) {
      const shard = `tenant-${n}`;
      const slot = await client.cluster('KEYSLOT', `{${shard}}`);
      const port = await masterPortOf(slot);
      if (!shardsByMaster.has(port)) shardsByMaster.set(port, shard);
    }
    expect(shardsByMaster.size).toBe(3);

    const prefix = freshPrefix('cluster');
    const indexer = () => [{ status: 'open', labels: { region: 'west' } }];
    for (const shard of shardsByMaster.values()) {
      const store = createRedisStore({ indexer, trimEvents: true }, { client, shard, prefix });
      await store.appendEvents(['order', shard], 0, [{ type: 'Opened', data: { shard } }]);
      await store.appendEvents(['gone'], 0, [{ type: 'Opened', data: {} }]);
      await store.archive(['gone']);
      await store.putSnapshot(['order', shard], { shard }, 1);
      await store.close();
    }

    // Ask each master directly which keys it holds.
    for (const node of cluster.nodes) {
      const direct = new Redis(node.port, '127.0.0.1');
      try {
        const keys: string[] = [];
        let cursor = '0';
        do {
          const [next, found] = await direct.scan(cursor, 'MATCH', `*${prefix}*`, 'COUNT', 1000);
          cursor = next;
          keys.push(...found);
        } while (cursor !== '0');
        const shard = shardsByMaster.get(node.port)!;
        const expected = new KeySpace(prefix, shard);
        // meta, ids, status, label values, label holders, archive stream, the archived ID's next life
        // start, the log's position counter and (emptied) stream (events were trimmed away; no feed
        // stream, as nobody subscribed).
        expect(keys.sort()).toEqual(
          [
            expected.meta(`order:${shard}`),
            expected.meta('gone'),
            expected.position,
            expected.log,
            expected.ids,
            expected.status('open'),
            expected.labelValues('region'),
            expected.labelHolders('region', 'west'),
            expected.archive,
          ].sort(),
        );
      } finally {
        direct.disconnect();
      }
    }

    // And the data reads back through the cluster client.
    for (const shard of shardsByMaster.values()) {
      const store = createRedisStore({}, { client, shard, prefix });
      expect((await store.getSnapshot(['order', shard])).value).toEqual({ shard });
      expect(await store.listAggregatesByStatus('open')).toHaveLength(1);
      await store.close();
      expect(await deleteStoreKeys(client, { prefix, shard })).toBe(9);
    }
  });
});
