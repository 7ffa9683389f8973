import { type Index } from '@timebox/core';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createRedisStore, deleteStoreKeys, KeySpace, RedisBackend } from '../src/index.js';
import { freshPrefix } from './namespaces.js';

const url = inject('redisUrl');
const admin = new Redis(url);
afterAll(() => admin.quit());

/** Every key of a store with its type and dumped value, to show a store left untouched. */
async function dumpStore(keys: KeySpace): Promise<Map<string, string>> {
  const dump = new Map<string, string>();
  let cursor = '0';
  do {
    const [next, found] = await admin.scan(cursor, 'MATCH', keys.pattern, 'COUNT', 1000);
    cursor = next;
    for (const key of found) dump.set(key, (await admin.dumpBuffer(key)).toString('base64'));
  } while (cursor !== '0');
  return dump;
}

const NASTY = [
  "'); redis.call('FLUSHALL'); --",
  ']] redis.call("DEL", KEYS[1]) --[[',
  '{victim}',
  '}{',
  'a:m:b',
  '*',
  '?[a-z]\\',
  'line\nbreak\r\n*1\r\n$8\r\nFLUSHALL\r\n',
  '"quoted" \'single\' `tick`',
  '%3A%7B%',
  '',
];

type NastyEvents = { Set: Index; [type: string]: unknown };

describe('keys: injection attempts through prefix, ID parts, labels and values are data', () => {
  it('stores and reads back every nasty string exactly and touches no other store', async () => {
    const victimPrefix = freshPrefix('victim');
    const victim = createRedisStore<NastyEvents>(
      { indexer: (events) => events.map((e) => (e.type === 'Set' ? (e.payload as Index) : undefined)) },
      { url, prefix: victimPrefix },
    );
    await victim.appendEvents(['order', '1'], 0, [{ type: 'Set', data: { status: 'open', labels: { region: 'west' } } }]);
    await victim.putSnapshot(['order', '1'], { n: 1 }, 1);
    const victimKeys = new KeySpace(victimPrefix, undefined);
    const before = await dumpStore(victimKeys);
    expect(before.size).toBeGreaterThan(0);

    // Attackers whose prefixes try to reach into the victim's key space.
    const attackerPrefixes = [
      `${victimPrefix}:m:order`,
      `${victimPrefix}:ids`,
      `${victimPrefix}*`,
      `{${victimPrefix}}`,
      ...NASTY.filter((s) => s !== ''),
    ];
    for (const [n, prefix] of attackerPrefixes.entries()) {
      const store = createRedisStore<NastyEvents>(
        { indexer: (events) => events.map((e) => (e.type === 'Set' ? (e.payload as Index) : undefined)) },
        { url, prefix },
      );
      try {
        const labels = Object.fromEntries(NASTY.filter((s) => s !== '').map((name, i) => [name, NASTY[(i + n) % NASTY.length] || 'v']));
        const ids = NASTY.map((part, i) => [part, NASTY[(i + 1) % NASTY.length]!, 'order', '1']);
        for (const [i, id] of ids.entries()) {
          await store.appendEvents(id, 0, [
            { type: NASTY[i] || 'empty', data: { text: NASTY[i] } },
            { type: 'Set', data: { status: NASTY[(i + 2) % NASTY.length] || 'x', labels } },
          ]);
        }
        for (const [i, id] of ids.entries()) {
          const events = await store.getEvents(id);
          expect(events.map((e) => [e.type, e.aggregateId])).toEqual([
            [NASTY[i] || 'empty', id],
            ['Set', id],
          ]);
          expect(events[0]!.payload).toEqual({ text: NASTY[i] });
          expect(await store.getAggregateStatus(id)).toBe(NASTY[(i + 2) % NASTY.length] || 'x');
        }
        const listed = await store.listAggregates();
        expect(listed).toHaveLength(ids.length);
        expect(listed.map((id) => JSON.stringify(id)).sort()).toEqual(ids.map((id) => JSON.stringify(id)).sort());
        for (const [name, value] of Object.entries(labels)) {
          expect(await store.listLabelValues(name)).toEqual([value]);
          expect(await store.listAggregatesByLabel(name, value)).toHaveLength(ids.length);
        }
        for (const pattern of ['*', '?[a-z]\\']) expect(await store.listAggregates([pattern])).toHaveLength(1);
        await store.archive(ids[0]!);
        expect(await store.listAggregates()).toHaveLength(ids.length - 1);
      } finally {
        await store.close();
        await deleteStoreKeys(admin, { prefix });
      }
    }

    expect(await dumpStore(victimKeys)).toEqual(before);
    const events = await victim.getEvents(['order', '1']);
    expect(events).toHaveLength(1);
    expect(await victim.listAggregatesByLabel('region', 'west')).toEqual([['order', '1']]);
    await victim.close();
    await deleteStoreKeys(admin, { prefix: victimPrefix });
  });

  it('puts every key of a sharded store under the {shard} hash tag and no other braces', async () => {
    const prefix = `{evil}:${freshPrefix()}`;
    const store = createRedisStore({ indexer: () => [{ status: '{s}', labels: { '{l}': '{v}' } }] }, { url, prefix, shard: 'tenant-7' });
    await store.appendEvents(['{id}', '}x{'], 0, [{ type: 'T', data: {} }]);
    await store.archive(['{id}', '}x{']);
    // The new life starts one past the archived life's next sequence (1).
    await store.appendEvents(['{id}', '}x{'], 2, [{ type: 'T', data: {} }]);
    await (store.backend as RedisBackend).projections.claim('{p}:x', 'runner', 60_000);
    const keys = new KeySpace(prefix, 'tenant-7');
    const found = await dumpStore(keys);
    expect(found.size).toBeGreaterThanOrEqual(5);
    for (const key of found.keys()) {
      expect(key.startsWith('{tenant-7}:')).toBe(true);
      expect(key.slice('{tenant-7}'.length)).not.toMatch(/[{}]/);
    }
    await store.close();
    await deleteStoreKeys(admin, { prefix, shard: 'tenant-7' });
  });
});
