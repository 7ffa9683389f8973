import { InvalidSequenceError, StoreClosedError, VersionConflictError, type Event, type Store } from '@timebox/core';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, inject, it, vi } from 'vitest';
import { createRedisStore, deleteStoreKeys, RedisBackend } from '../src/index.js';
import { freshPrefix } from './namespaces.js';
import { waitFor } from './server.js';

const url = inject('redisUrl');
const admin = new Redis(url);
afterAll(() => admin.quit());

const opened: { store: Store; prefix: string }[] = [];
afterEach(async () => {
  const done = opened.splice(0);
  for (const { store } of done) await store.close();
  for (const prefix of new Set(done.map((entry) => entry.prefix))) await deleteStoreKeys(admin, { prefix });
});

/** A store over `prefix` on a connection of its own, as another process would have. */
function open(prefix: string, trimEvents = false): Store & { backend: RedisBackend } {
  const store = createRedisStore({ trimEvents }, { url, prefix });
  opened.push({ store, prefix });
  return store as Store & { backend: RedisBackend };
}

/** Every event of the log, read from the start in pages of `limit`. */
async function readWhole(store: Store, options: { limit: number; types?: string[]; aggregatePrefix?: string[] }): Promise<Event[]> {
  const events: Event[] = [];
  let page = await store.readAll(options);
  for (;;) {
    events.push(...page.events);
    if (page.end) return events;
    page = await store.readAll({ ...options, after: page.checkpoint });
  }
}

const describeEvent = (event: Event) => [event.aggregateId.join('/'), event.sequence, event.type, event.position];

describe('redis log positions', () => {
  it('numbers appends from several connections in commit order, consecutively within an append, and every read carries them', async () => {
    const prefix = freshPrefix('positions');
    const writers = [open(prefix), open(prefix), open(prefix)];
    const appended: Event[][] = [];
    await Promise.all(
      writers.map(async (store, w) => {
        for (let i = 0; i < 40; i++) {
          const id = [`w${w}`, String(i % 5)];
          const next = (await store.getEvents(id)).length;
          const batch = Array.from({ length: 1 + ((i + w) % 3) }, (_, n) => ({ type: `T${n}`, data: { w, i, n } }));
          appended.push(await store.appendEvents(id, next, batch));
        }
      }),
    );
    const all = appended.flat();
    for (const batch of appended) {
      batch.forEach((event, n) => expect(event.position).toBe((batch[0] as Event).position + n));
    }
    // Nothing failed, so no position was skipped: exactly 1..N, each once.
    expect(all.map((event) => event.position).sort((a, b) => a - b)).toEqual(all.map((_, n) => n + 1));

    const reader = open(prefix);
    const read = await readWhole(reader, { limit: 7 });
    expect(read.map(describeEvent)).toEqual([...all].sort((a, b) => a.position - b.position).map(describeEvent));
    expect(read.map((event) => event.data)).toEqual([...all].sort((a, b) => a.position - b.position).map((event) => event.data));

    // Loads, snapshots and conflicts return the stored positions too.
    const byId = new Map<string, Event[]>();
    for (const event of read) byId.set(event.aggregateId.join('/'), [...(byId.get(event.aggregateId.join('/')) ?? []), event]);
    const stored = byId.get('w1/3') as Event[];
    expect((await reader.getEvents(['w1', '3'])).map(describeEvent)).toEqual(stored.map(describeEvent));
    expect((await reader.getSnapshot(['w1', '3'])).events.map(describeEvent)).toEqual(stored.map(describeEvent));
    const conflict = await reader.appendEvents(['w1', '3'], 1, [{ type: 'Late', data: {} }]).catch((error: unknown) => error);
    expect(conflict).toBeInstanceOf(VersionConflictError);
    expect((conflict as VersionConflictError).newEvents.map(describeEvent)).toEqual(stored.slice(1).map(describeEvent));
    expect(await reader.headCheckpoint()).toBe((await reader.readAll({ after: reader.startCheckpoint, limit: 10_000 })).checkpoint);
  });

  it('a reader paging while writers append ends up with every event exactly once, in position order', async () => {
    const prefix = freshPrefix('race');
    const writers = [open(prefix), open(prefix)];
    const reader = open(prefix);
    let writing = true;
    const seen: Event[] = [];
    const reading = (async () => {
      let checkpoint = reader.startCheckpoint;
      for (;;) {
        const done = !writing;
        const page = await reader.readAll({ after: checkpoint, limit: 5 });
        seen.push(...page.events);
        checkpoint = page.checkpoint;
        // Only a page read after the writers stopped and reaching the end proves nothing is left.
        if (done && page.end) return;
      }
    })();
    await Promise.all(
      writers.map(async (store, w) => {
        const pending: Promise<unknown>[] = [];
        for (let i = 0; i < 300; i++) pending.push(store.appendEvents([`r${w}`, String(i)], 0, [{ type: 'A', data: { i } }]));
        await Promise.all(pending);
      }),
    );
    writing = false;
    await reading;
    expect(seen).toHaveLength(600);
    expect(seen.map((event) => event.position)).toEqual(seen.map((_, n) => n + 1));
  });

  it('feed records carry the positions the append gave', async () => {
    const prefix = freshPrefix('feed-positions');
    const reader = open(prefix);
    const writer = open(prefix);
    const got: Event[] = [];
    await reader.subscribe((event) => void got.push(event));
    await writer.appendEvents(['f'], 0, [{ type: 'One', data: {} }]);
    const appended = await writer.appendEvents(['f'], 1, [
      { type: 'Two', data: {} },
      { type: 'Three', data: {} },
    ]);
    await waitFor('three events', async () => got.length === 3);
    expect(got.map((event) => [event.sequence, event.position])).toEqual([
      [0, 1],
      [1, (appended[0] as Event).position],
      [2, (appended[1] as Event).position],
    ]);
    expect(appended.map((event) => event.position)).toEqual([2, 3]);
  });
});

describe('redis log structure', () => {
  it('trimming and archiving remove the log entries of appends they empty, and the log skips what they removed', async () => {
    const prefix = freshPrefix('log-trim');
    const store = open(prefix, true);
    const log = store.backend.keys.log;
    await store.appendEvents(['x'], 0, [
      { type: 'X0', data: {} },
      { type: 'X1', data: {} },
    ]);
    await store.appendEvents(['y'], 0, [{ type: 'Y0', data: {} }]);
    await store.appendEvents(['x'], 2, [
      { type: 'X2', data: {} },
      { type: 'X3', data: {} },
    ]);
    await store.appendEvents(['x'], 4, [{ type: 'X4', data: {} }]);
    expect(await admin.xlen(log)).toBe(4);

    // Trimming below 3 empties the first append of x and leaves the second one half stored.
    await store.putSnapshot(['x'], { at: 3 }, 3);
    expect(await admin.xlen(log)).toBe(3);
    const afterTrim = await readWhole(store, { limit: 2 });
    expect(afterTrim.map((event) => event.type)).toEqual(['Y0', 'X3', 'X4']);
    expect(afterTrim.map((event) => event.position)).toEqual([3, 5, 6]);

    await store.archive(['x']);
    expect(await admin.xlen(log)).toBe(1);
    expect((await readWhole(store, { limit: 10 })).map((event) => event.type)).toEqual(['Y0']);
    // The position counter is untouched: the next append goes on after every position given.
    expect((await store.appendEvents(['y'], 1, [{ type: 'Y1', data: {} }]))[0]?.position).toBe(7);
  });

  it('splits an append larger than a page over several pages, and pages resume inside it', async () => {
    const prefix = freshPrefix('log-big');
    const store = open(prefix);
    const events = Array.from({ length: 2_500 }, (_, n) => ({ type: n % 100 === 99 ? 'Rare' : 'Common', data: { n } }));
    await store.appendEvents(['big'], 0, events);
    const backend = store.backend;
    const pages = [];
    let after = [0];
    for (;;) {
      const page = await backend.readLog({ after, limit: 1_000 });
      pages.push({ count: page.entries.length, after: page.after[0], end: page.end });
      after = page.after;
      if (page.end) break;
    }
    expect(pages).toEqual([
      { count: 1_000, after: 1_000, end: false },
      { count: 1_000, after: 2_000, end: false },
      { count: 500, after: 2_500, end: true },
    ]);
    const rare = await readWhole(store, { limit: 10, types: ['Rare'] });
    expect(rare.map((event) => event.sequence)).toEqual(Array.from({ length: 25 }, (_, n) => n * 100 + 99));
  });

  it('bounds the work of one page: a filter that matches nothing for long returns an empty page that moved on', async () => {
    const prefix = freshPrefix('log-scan');
    const store = open(prefix);
    for (let i = 0; i < 30; i++) {
      await store.appendEvents(
        ['noise', String(i)],
        0,
        Array.from({ length: 100 }, () => ({ type: 'Noise', data: {} })),
      );
    }
    await store.appendEvents(['signal'], 0, [{ type: 'Signal', data: {} }]);
    const first = await store.backend.readLog({ after: [0], limit: 5, types: ['Signal'] });
    // 3,000 non-matching events lie before the match; one call looks at far fewer.
    expect(first.entries).toEqual([]);
    expect(first.end).toBe(false);
    expect(first.after[0]).toBeGreaterThan(0);
    expect(first.after[0]).toBeLessThan(2_000);
    const signals = await readWhole(store, { limit: 5, types: ['Signal'] });
    expect(signals.map((event) => [event.aggregateId, event.position])).toEqual([[['signal'], 3_001]]);
    // No type at all matches nothing, and still reads to the end.
    const none = await store.backend.readLog({ after: [2_990], limit: 5, types: [] });
    expect(none).toEqual({ entries: [], after: [3_001], end: true });
  });

  it('filters by type inside the script whatever the type holds: non-ASCII, colons, one type a prefix of another', async () => {
    const prefix = freshPrefix('log-types');
    const store = open(prefix);
    // Lengths are written in UTF-16 code units, while the script sees UTF-8 bytes.
    const types = ['Größe', '🙂', 'ab', 'abc', 'a:b', 'ab🙂', 'Gr', '🙂🙂'];
    for (const [n, type] of types.entries()) await store.appendEvents(['t', String(n)], 0, [{ type, data: { type } }]);
    const only = async (wanted: string[]) => (await readWhole(store, { limit: 3, types: wanted })).map((event) => event.type);
    for (const type of types) expect(await only([type])).toEqual([type]);
    expect(await only(['ab', 'Größe', '🙂🙂'])).toEqual(['Größe', 'ab', '🙂🙂']);
    expect(await only(['a', 'b', 'Gröé', '🙁'])).toEqual([]);
  });

  it('matches prefixes on whole ID parts, escaped characters included, inside the script', async () => {
    const prefix = freshPrefix('log-prefix');
    const store = open(prefix);
    const ids = [['order'], ['order', '1'], ['order0'], ['order:1'], ['order', '1', 'x'], ['ord'], ['order{1}'], ['%order'], ['order', '']];
    for (const id of ids) await store.appendEvents(id, 0, [{ type: 'E', data: {} }]);
    const under = async (aggregatePrefix: string[]) =>
      (await readWhole(store, { limit: 2, aggregatePrefix })).map((event) => event.aggregateId.join('|'));
    expect(await under(['order'])).toEqual(['order', 'order|1', 'order|1|x', 'order|']);
    expect(await under(['order', '1'])).toEqual(['order|1', 'order|1|x']);
    expect(await under(['order:1'])).toEqual(['order:1']);
    expect(await under(['order{1}'])).toEqual(['order{1}']);
    expect(await under(['order', ''])).toEqual(['order|']);
    expect(await under(['%order'])).toEqual(['%order']);
    expect(await under(['ord'])).toEqual(['ord']);
    expect(await under([])).toHaveLength(ids.length);
  });
});

describe('redis: one life per ID', () => {
  it('keeps where the next life starts in Redis, so every connection sees it', async () => {
    const prefix = freshPrefix('life');
    const first = open(prefix, true);
    const second = open(prefix, true);
    const archiveKey = first.backend.keys.archive;
    await first.appendEvents(['x'], 0, [
      { type: 'A', data: {} },
      { type: 'B', data: {} },
      { type: 'C', data: {} },
    ]);
    await first.putSnapshot(['x'], { n: 2 }, 2);
    await second.archive(['x']);
    expect(await admin.xlen(archiveKey)).toBe(1);

    // The first connection, whose view was of the old life, conflicts at the old next sequence.
    const conflict = await first.appendEvents(['x'], 3, [{ type: 'Old', data: {} }]).catch((error: unknown) => error);
    expect(conflict).toBeInstanceOf(VersionConflictError);
    expect((conflict as VersionConflictError).actualSequence).toBe(4);
    expect((conflict as VersionConflictError).newEvents).toEqual([]);
    expect(await first.getSnapshot(['x'])).toMatchObject({ value: undefined, nextSequence: 4, events: [] });
    expect(await first.listAggregates()).toEqual([]);
    // A snapshot at the life's start is ignored; one beyond it is refused.
    await first.putSnapshot(['x'], { stale: true }, 4);
    expect((await first.getSnapshot(['x'])).value).toBeUndefined();
    await expect(first.putSnapshot(['x'], { ahead: true }, 5)).rejects.toBeInstanceOf(InvalidSequenceError);
    // Archiving it again archives nothing.
    await second.archive(['x']);
    expect(await admin.xlen(archiveKey)).toBe(1);

    const reborn = await second.appendEvents(['x'], 4, [{ type: 'New', data: {} }]);
    expect(reborn.map((event) => [event.sequence, event.position])).toEqual([[4, 4]]);
    expect(await first.listAggregates()).toEqual([['x']]);
    expect((await first.getEvents(['x'])).map((event) => [event.type, event.sequence])).toEqual([['New', 4]]);
    expect((await readWhole(first, { limit: 10 })).map((event) => [event.type, event.sequence])).toEqual([['New', 4]]);
    // The next archive starts the life after at the new life's next sequence plus one.
    await first.archive(['x']);
    expect((await second.getSnapshot(['x'])).nextSequence).toBe(6);
  });
});

describe('redis projection records', () => {
  it('judges leases by the server clock, not the process clock', async () => {
    const prefix = freshPrefix('proj-clock');
    const a = open(prefix).backend.projections;
    const b = open(prefix).backend.projections;
    const [seconds] = await admin.time();
    const claimed = await a.claim('p', 'runner-a', 60_000);
    expect(claimed.held).toBe(true);
    expect(claimed.record.leaseUntil).toBeGreaterThanOrEqual(Number(seconds) * 1000 + 60_000);
    expect(claimed.record.leaseUntil).toBeLessThan(Number(seconds) * 1000 + 62_000);
    // A process whose clock runs two minutes fast still sees the lease held, and cannot take it.
    const skew = vi.spyOn(Date, 'now').mockImplementation(() => new Date().getTime() + 120_000);
    try {
      expect(await b.claim('p', 'runner-b', 60_000)).toMatchObject({ held: false, record: { holder: 'runner-a' } });
      expect((await b.load('p'))?.holder).toBe('runner-a');
    } finally {
      skew.mockRestore();
    }
  });

  it('takes over an expired lease, refuses stale holders and generations, and stores checkpoints exactly', async () => {
    const prefix = freshPrefix('proj');
    const a = open(prefix).backend.projections;
    const bStore = open(prefix);
    const b = bStore.backend.projections;
    expect(await a.load('orders')).toBeUndefined();
    // Leases long enough that a loaded machine does not lose one between two calls.
    const lease = 2_000;
    const claims = await Promise.all([a.claim('orders', 'a', lease), b.claim('orders', 'b', lease)]);
    expect(claims.filter((claim) => claim.held)).toHaveLength(1);
    const [winner, loser, loserName] = claims[0]?.held ? [a, b, 'b'] : [b, a, 'a'];
    const winnerName = loserName === 'a' ? 'b' : 'a';
    const checkpoint = '1.abc.{"x":"\\u0000 é\n🙂"}.%3A';
    expect(await winner.save('orders', winnerName, 0, { checkpoint, lastError: 'boom' }, lease)).toBe('ok');
    expect(await loser.save('orders', loserName, 0, { checkpoint: 'nope' }, lease)).toBe('lost-lease');
    expect(await loser.load('orders')).toMatchObject({ checkpoint, lastError: 'boom', holder: winnerName, generation: 0 });

    // The loser takes over once the lease has run out on the server.
    await waitFor('the lease to expire', async () => (await loser.claim('orders', loserName, 60_000)).held);
    expect(await winner.save('orders', winnerName, 0, { checkpoint: 'late' }, lease)).toBe('lost-lease');
    expect(await loser.save('orders', loserName, 0, { lastError: null }, 60_000)).toBe('ok');
    expect(await winner.load('orders')).toMatchObject({ checkpoint, lastError: undefined, holder: loserName });

    await winner.reset('orders', undefined);
    expect(await loser.save('orders', loserName, 0, { checkpoint: 'old generation' }, 60_000)).toBe('reset');
    expect(await loser.load('orders')).toMatchObject({ checkpoint: undefined, generation: 1, holder: loserName });
    await winner.release('orders', loserName === 'a' ? 'someone-else' : 'nobody');
    expect((await loser.load('orders'))?.holder).toBe(loserName);
    await loser.release('orders', loserName);
    expect(await loser.load('orders')).toMatchObject({ holder: undefined, leaseUntil: 0, generation: 1 });

    // The record is a key of the store: deleting the store's keys removes it.
    await bStore.close();
    await expect(b.load('orders')).rejects.toBeInstanceOf(StoreClosedError);
    await deleteStoreKeys(admin, { prefix });
    expect(await a.load('orders')).toBeUndefined();
  });
});
