import { createStore } from '@timebox/core';
import { describe, expect, it } from 'vitest';
import { LocalCluster } from './support.js';

describe('raft member smoke', () => {
  it('three members: a write on one is read on every other', { timeout: 30_000 }, async () => {
    const cluster = await LocalCluster.start(3);
    try {
      const stores = cluster.members.map((member) => createStore(member!.backend()));
      await Promise.all(stores.map((store) => store.ready()));
      await stores[1]!.appendEvents(['a'], 0, [{ type: 'T', data: { n: 1 } }]);
      await stores[2]!.appendEvents(['a'], 1, [{ type: 'T', data: { n: 2 } }]);
      for (const store of stores) {
        for (let i = 0; i < 100 && (await store.getEvents(['a'])).length < 2; i++) await new Promise((r) => setTimeout(r, 20));
        expect((await store.getEvents(['a'])).map((e) => e.payload)).toEqual([{ n: 1 }, { n: 2 }]);
      }
      await Promise.all(stores.map((store) => store.close()));
    } finally {
      await cluster.close();
    }
  });
});
