import { describeConformance } from '@timebox/core/conformance';
import { ConfigError, encodeAggregateId, type AggregateId } from '@timebox/core';
import { Redis, type Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisStore, deleteStoreKeys, RedisBackend } from '../src/index.js';
import { shardOf, shardTags, slotOfTag } from '../src/slots.js';
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

// Six shards: two per master, so every query, the log and the feed cross masters.
describeConformance({
  name: 'redis cluster (shards: 6)',
  capabilities: { archive: true, archiveRedeliveryMs: CLAIM_IDLE_MS, hub: true, readSide: true },
  namespace: () => namespaceOver(client, { client, shards: 6, archiveClaimIdleMs: CLAIM_IDLE_MS, archiveBlockMs: 100 }),
});

/** Every key on one master whose name holds `text`, asked of the master directly. */
async function keysOn(port: number, text: string): Promise<string[]> {
  const direct = new Redis(port, '127.0.0.1');
  try {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await direct.scan(cursor, 'MATCH', `*${text}*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
    return keys;
  } finally {
    direct.disconnect();
  }
}

describe('redis cluster: a store spread over shards', () => {
  it('computes the slots the cluster computes for the shard tags', async () => {
    for (const tag of shardTags(48)) expect(slotOfTag(tag)).toBe(await client.cluster('KEYSLOT', `{${tag}}:x`));
  });

  it('spreads the keys of 3,000 aggregates over 48 shards evenly over the three masters', async () => {
    const prefix = freshPrefix('spread');
    const store = createRedisStore(
      { indexer: (events) => events.map((event) => ({ status: event.type, labels: { region: `r${event.payload as number}` } })) },
      { client, shards: 48, prefix },
    );
    const ids = Array.from({ length: 3000 }, (_, i) => ['order', String(i)]);
    for (let start = 0; start < ids.length; start += 100) {
      await Promise.all(ids.slice(start, start + 100).map((id, i) => store.appendEvents(id, 0, [{ type: 'Opened', data: i % 5 }])));
    }
    const perMaster = await Promise.all(cluster.nodes.map(async (node) => (await keysOn(node.port, prefix)).length));
    const total = perMaster.reduce((sum, count) => sum + count, 0);
    // meta and events per aggregate, plus per shard: ids, status, label values, five holder sets, counter, log.
    expect(total).toBe(3000 * 2 + 48 * 10);
    for (const count of perMaster) {
      expect(Math.abs(count / total - 1 / 3), `shares ${perMaster.map((n) => (n / total).toFixed(3)).join(', ')}`).toBeLessThanOrEqual(0.1);
    }
    // The merged queries see every aggregate once.
    expect(await store.listAggregates([])).toHaveLength(3000);
    expect(await store.listAggregatesByStatus('Opened')).toHaveLength(3000);
    expect(await store.listAggregatesByLabel('region', 'r3')).toHaveLength(600);
    expect(await store.listLabelValues('region')).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    await store.close();
    expect(await deleteStoreKeys(client, { prefix, shards: 48 })).toBe(total);
    expect(perMaster.every((count) => count > 0)).toBe(true);
  }, 60_000);

  it('refuses a checkpoint of the same prefix with another shard count', async () => {
    const prefix = freshPrefix('counts');
    const six = createRedisStore({}, { client, shards: 6, prefix });
    const seven = createRedisStore({}, { client, shards: 7, prefix });
    await six.appendEvents(['a'], 0, [{ type: 'Opened', data: {} }]);
    const checkpoint = (await six.readAll()).checkpoint;
    expect((six.backend as RedisBackend).log?.id).not.toBe((seven.backend as RedisBackend).log?.id);
    await expect(seven.readAll({ after: checkpoint })).rejects.toThrow(/another store/);
    // And the other count is another, empty store.
    expect(await seven.listAggregates([])).toEqual([]);
    await Promise.all([six.close(), seven.close()]);
    await deleteStoreKeys(client, { prefix, shards: 6 });
  });

  it('validates shards with ConfigError', () => {
    for (const shards of [0, -1, 1.5, 16_385, Number.NaN, '4']) {
      expect(() => new RedisBackend({ client, shards: shards as number }), String(shards)).toThrow(ConfigError);
    }
    expect(() => new RedisBackend({ client, shards: 4, shard: 'one' })).toThrow(/shards cannot be combined with shard/);
    expect(() => new RedisBackend({ client })).toThrow(/shard or shards is required/);
  });

  it('an append whose shard moved to another master is sent again and lands once, and so do the appends that shared its call', async () => {
    const SHARDS = 6;
    const prefix = freshPrefix('moved');
    // A client of its own, whose slot map goes stale when the slot moves below it.
    const stale = cluster.client();
    const store = createRedisStore({}, { client: stale, shards: SHARDS, prefix });
    try {
      await store.ready();
      const slots = shardTags(SHARDS).map(slotOfTag);
      const ownerOf = (slot: number) => stale.slots[slot]?.[0];
      await stale.cluster('SLOTS');
      expect(slots.every((slot) => ownerOf(slot) !== undefined)).toBe(true);
      // Two shards on one master: one will move, the other stays.
      const moving = slots.findIndex((slot, shard) => slots.some((other, o) => o !== shard && ownerOf(other) === ownerOf(slot)));
      const staying = slots.findIndex((slot, shard) => shard !== moving && ownerOf(slot) === ownerOf(slots[moving] as number));
      const idsIn = (shard: number, count: number) => {
        const ids: AggregateId[] = [];
        for (let i = 0; ids.length < count; i++)
          if (shardOf(encodeAggregateId(['m', String(i)]), SHARDS) === shard) ids.push(['m', String(i)]);
        return ids;
      };
      const [moved] = idsIn(moving, 1) as [AggregateId];
      const [first, second, warm] = idsIn(staying, 3) as [AggregateId, AggregateId, AggregateId];
      // The client learns where every shard lives, writing to the staying shard.
      await store.appendEvents(warm, 0, [{ type: 'Warm', data: 0 }]);

      // Move the moving shard's slot (it holds no key yet) to another master, behind the client's back.
      const slot = slots[moving] as number;
      const from = cluster.nodes.find((node) => `127.0.0.1:${node.port}` === ownerOf(slot));
      const to = cluster.nodes.find((node) => node !== from);
      if (from === undefined || to === undefined) throw new Error('no master to move the slot between');
      const direct = (port: number) => new Redis(port, '127.0.0.1');
      const [source, target] = [direct(from.port), direct(to.port)];
      const others = cluster.nodes.filter((node) => node !== from && node !== to).map((node) => direct(node.port));
      try {
        expect(await source.cluster('COUNTKEYSINSLOT', slot)).toBe(0);
        const targetId = String(await target.cluster('MYID'));
        await target.cluster('SETSLOT', slot, 'IMPORTING', String(await source.cluster('MYID')));
        await source.cluster('SETSLOT', slot, 'MIGRATING', targetId);
        for (const node of [target, source, ...others]) await node.cluster('SETSLOT', slot, 'NODE', targetId);
        const failedBefore = await failedScriptCalls(source);

        // One append in flight, then two issued together for the same (stale) master: they share
        // one call, which the source refuses before writing anything, so each shard's group goes again.
        const outcomes = await Promise.all([
          store.appendEvents(warm, 1, [{ type: 'Warm', data: 1 }]),
          store.appendEvents(first, 0, [{ type: 'Stayed', data: 1 }]),
          store.appendEvents(moved, 0, [{ type: 'Moved', data: 2 }]),
          store.appendEvents(second, 0, [{ type: 'Stayed', data: 3 }]),
        ]);
        expect(outcomes).toHaveLength(4);
        expect(await failedScriptCalls(source)).toBeGreaterThan(failedBefore);
        for (const [id, payloads] of [
          [warm, [0, 1]],
          [first, [1]],
          [moved, [2]],
          [second, [3]],
        ] as const) {
          expect((await store.getEvents(id)).map((event) => event.payload)).toEqual(payloads);
        }
        expect(await target.cluster('COUNTKEYSINSLOT', slot)).toBeGreaterThan(0);
        expect(await source.cluster('COUNTKEYSINSLOT', slot)).toBe(0);
      } finally {
        for (const connection of [source, target, ...others]) connection.disconnect();
      }
    } finally {
      await store.close();
      await deleteStoreKeys(stale, { prefix, shards: SHARDS });
      stale.disconnect();
    }
  });
});

/** How many script calls a node answered with an error, from `INFO commandstats`. */
async function failedScriptCalls(node: Redis): Promise<number> {
  const info = await node.info('commandstats');
  let failed = 0;
  for (const match of info.matchAll(/^cmdstat_eval(?:sha)?:.*failed_calls=(\d+)/gm)) failed += Number(match[1]);
  return failed;
}
