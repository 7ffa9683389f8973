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
      await expectConsumesNewRecord(store);
    } finally {
      await store.close();
      await deleteStoreKeys(admin, { prefix });
    }
  });

  it('a blocking read answered just after an abort does not leave its closed connection for the next consumer', async () => {
    const prefix = freshPrefix('archive');
    // Named, so the test finds its own blocked connection among other test files' (duplicates keep the name).
    const name = prefix.replace(/[^A-Za-z0-9-]/g, '');
    const store = createRedisStore({}, { url, prefix, archiveBlockMs: 100, redisOptions: { connectionName: name } });
    try {
      const controller = new AbortController();
      const waiting = store.consumeArchive(() => undefined, { signal: controller.signal }).catch((e: unknown) => e);
      await expect.poll(() => blockedReaders(name), { timeout: 5000 }).toBe(1);
      // Abort, then keep the event loop busy past the end of the 100 ms block: the abort runs
      // first, and the read's (empty) answer is already waiting on the socket when the loop frees.
      setTimeout(() => controller.abort(new Error('stop')), 0);
      const until = Date.now() + 300;
      while (Date.now() < until);
      expect(await waiting).toEqual(new Error('stop'));

      // The next consumer of this store gets a record archived meanwhile.
      await expectConsumesNewRecord(store);
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
      const waiting = store
        .consumeArchive(() => undefined)
        .then(
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

  it('renewing a hold never takes back a record another consumer reclaimed', async () => {
    const { prefix, store, keys, entryId, release, consuming } = await holdWithSlowHandler();
    try {
      // Another consumer takes the entry over, as XAUTOCLAIM would after a missed renewal.
      await admin.xclaim(keys.archive, 'timebox-archive', 'other', 0, entryId, 'JUSTID');
      // Several renewal periods (every CLAIM_IDLE_MS / 3) pass while the slow handler still runs.
      await new Promise((resolve) => setTimeout(resolve, CLAIM_IDLE_MS * 2));
      const pending = (await admin.xpending(keys.archive, 'timebox-archive', '-', '+', 10)) as [string, string, number, number][];
      expect(pending.map(([id, consumer]) => [id, consumer])).toEqual([[entryId, 'other']]);
      release();
      await consuming;
    } finally {
      release();
      await store.close();
      await deleteStoreKeys(admin, { prefix });
    }
  });

  it('a slow handler keeps its record pending with its own consumer, freshly renewed', async () => {
    const { prefix, store, keys, release, consuming } = await holdWithSlowHandler();
    try {
      await new Promise((resolve) => setTimeout(resolve, CLAIM_IDLE_MS * 3));
      // Still this consumer's, and never idle for the reclaim time, so XAUTOCLAIM skips it.
      const stale = await admin.xpending(keys.archive, 'timebox-archive', 'IDLE', CLAIM_IDLE_MS, '-', '+', 10);
      expect(stale).toEqual([]);
      const pending = (await admin.xpending(keys.archive, 'timebox-archive', '-', '+', 10)) as [string, string, number, number][];
      expect(pending.map(([, consumer, , deliveries]) => [consumer, deliveries])).toEqual([['slow', 1]]);
      release();
      await consuming;
      expect(await admin.xlen(keys.archive)).toBe(0);
    } finally {
      release();
      await store.close();
      await deleteStoreKeys(admin, { prefix });
    }
  });
});

const CLAIM_IDLE_MS = 300;

/** Archives one aggregate and starts consumer 'slow' on it with a handler that runs until released. */
async function holdWithSlowHandler() {
  const prefix = freshPrefix('archive');
  const store = createRedisStore({}, { url, prefix, archiveConsumer: 'slow', archiveClaimIdleMs: CLAIM_IDLE_MS });
  const keys = new KeySpace(prefix, undefined);
  await store.appendEvents(['a'], 0, [{ type: 'T', data: {} }]);
  await store.archive(['a']);
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let taken!: (entryId: string) => void;
  const tookIt = new Promise<string>((resolve) => (taken = resolve));
  const consuming = store.consumeArchive(async (record) => {
    taken(record.streamId);
    await released;
  });
  const entryId = await tookIt;
  return { prefix, store, keys, entryId, release, consuming };
}

/** How many connections named `name` are blocked in an XREADGROUP. */
async function blockedReaders(name: string): Promise<number> {
  const list = (await admin.client('LIST')) as string;
  return list.split('\n').filter((line) => line.includes(` name=${name} `) && / flags=b /.test(line) && / cmd=xreadgroup /.test(line))
    .length;
}

/** Archives a fresh aggregate `later` and checks that a consumer of `store` receives it. */
async function expectConsumesNewRecord(store: ReturnType<typeof createRedisStore>): Promise<void> {
  await store.appendEvents(['later'], 0, [{ type: 'T', data: {} }]);
  await store.archive(['later']);
  const seen: string[][] = [];
  await store.consumeArchive((record) => void seen.push([...record.aggregateId]), { signal: AbortSignal.timeout(5000) });
  expect(seen).toEqual([['later']]);
}
