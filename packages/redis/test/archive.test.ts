import { StoreClosedError } from '@timebox/core';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createRedisStore, deleteStoreKeys, KeySpace } from '../src/index.js';
import { freshPrefix } from './namespaces.js';

const url = inject('redisUrl');
const admin = new Redis(url);
afterAll(() => admin.quit());

describe('archive stream', () => {
  it('an abort stops a consumer blocked on a long read at once, not when the read times out', async () => {
    const prefix = freshPrefix('archive');
    // A 60 s blocking read: only disconnecting the blocked connection can end the wait early.
    const store = createRedisStore({}, { url, prefix, archiveBlockMs: 60_000 });
    try {
      const controller = new AbortController();
      const reason = new Error('shutting down');
      const waiting = store.consumeArchive(() => undefined, { signal: controller.signal });
      // Let the consumer reach its blocking read.
      const keys = new KeySpace(prefix, undefined);
      await expect.poll(() => admin.exists(keys.archive), { timeout: 5000 }).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const abortedAt = Date.now();
      controller.abort(reason);
      await expect(waiting).rejects.toBe(reason);
      // Generous for a loaded machine, yet far below the 60 s block.
      expect(Date.now() - abortedAt).toBeLessThan(5_000);

      // The store keeps working, and a new consumer gets a record archived meanwhile.
      await store.appendEvents(['later'], 0, [{ type: 'T', data: { n: 1 } }]);
      await store.archive(['later']);
      const seen: string[][] = [];
      await store.consumeArchive((record) => void seen.push([...record.aggregateId]), { signal: AbortSignal.timeout(5000) });
      expect(seen).toEqual([['later']]);
    } finally {
      await store.close();
      await deleteStoreKeys(admin, { prefix });
    }
  });

  it('keeps a record on the stream until its handler resolves, then removes it', async () => {
    const prefix = freshPrefix('archive');
    const store = createRedisStore({}, { url, prefix });
    const keys = new KeySpace(prefix, undefined);
    try {
      await store.appendEvents(['a'], 0, [{ type: 'T', data: {} }]);
      await store.archive(['a']);
      expect(await admin.xlen(keys.archive)).toBe(1);
      await store.consumeArchive(async () => {
        expect(await admin.xlen(keys.archive)).toBe(1);
      });
      expect(await admin.xlen(keys.archive)).toBe(0);
      const pending = (await admin.xpending(keys.archive, 'timebox-archive')) as [number, ...unknown[]];
      expect(pending[0]).toBe(0);
    } finally {
      await store.close();
      await deleteStoreKeys(admin, { prefix });
    }
  });

  it('closing the store ends a waiting consumer and its blocking connection', async () => {
    const prefix = freshPrefix('archive');
    const store = createRedisStore({}, { url, prefix, archiveBlockMs: 60_000 });
    try {
      // Handled from the start: the rejection comes while close() is still awaiting the server.
      const waiting = store.consumeArchive(() => undefined).then(
        () => undefined,
        (error: unknown) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, 150));
      await store.close();
      expect(await waiting).toBeInstanceOf(StoreClosedError);
    } finally {
      await deleteStoreKeys(admin, { prefix });
    }
  });
});
