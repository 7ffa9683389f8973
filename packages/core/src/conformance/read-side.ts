import { describe, expect, it } from 'vitest';
import { compareCheckpoints } from '../checkpoint.js';
import {
  InvalidAggregateIdError,
  InvalidArgumentError,
  InvalidCheckpointError,
  ReadSideUnavailableError,
  VersionConflictError,
} from '../errors.js';
import type { Event, EventMap } from '../event.js';
import { createExecutor, type Command } from '../executor.js';
import type { AggregateId } from '../id.js';
import type { ReadAllOptions } from '../read-all.js';
import type { Store } from '../store.js';
import type { Harness } from './harness.js';
import { makeEvents, partitionsOf } from './util.js';

type LedgerEvents = { Opened: { owner: string }; Deposited: { cents: number }; Noted: { text: string } };

/** Reads the whole log (or what `options` select) page by page; fails if a page repeats a position. */
export async function readEverything<M extends EventMap>(
  store: Store<M>,
  options: Omit<ReadAllOptions, 'after'> = {},
): Promise<{ events: Event[]; checkpoint: string; pages: number }> {
  const events: Event[] = [];
  let pages = 0;
  const limit = options.limit ?? 100;
  let page = await store.readAll(options);
  for (;;) {
    pages++;
    expect(page.events.length, 'a page holds at most limit events').toBeLessThanOrEqual(limit);
    events.push(...(page.events as Event[]));
    if (page.end) return { events, checkpoint: page.checkpoint, pages };
    page = await store.readAll({ ...options, after: page.checkpoint });
  }
}

function keyOf(event: Event): string {
  return `${JSON.stringify(event.aggregateId)}#${event.sequence}`;
}

/** Appends `count` events to each ID in batches of `batch`, sequentially, so the log order is known. */
async function fill(store: Store, ids: readonly AggregateId[], count: number, batch: number): Promise<void> {
  for (let start = 0; start < count; start += batch) {
    for (const id of ids) {
      await store.appendEvents(id, start, makeEvents(Math.min(batch, count - start), start));
    }
  }
}

export function readSideSuite(h: Harness): void {
  if (h.target.capabilities.readSide !== true) {
    describe('the read side (not supported)', () => {
      it('rejects readAll, project, headCheckpoint and a resuming subscribe with ReadSideUnavailableError', async () => {
        const store = await h.store();
        await expect(store.readAll()).rejects.toBeInstanceOf(ReadSideUnavailableError);
        await expect(store.headCheckpoint()).rejects.toBeInstanceOf(ReadSideUnavailableError);
        expect(() => store.project('p', () => undefined)).toThrow(ReadSideUnavailableError);
        await expect(store.projectionStatus('p')).rejects.toBeInstanceOf(ReadSideUnavailableError);
        await expect(store.resetProjection('p')).rejects.toBeInstanceOf(ReadSideUnavailableError);
      });
    });
    lifeSuite(h);
    return;
  }

  describe('positions and readAll', () => {
    it('gives every stored event a position, the same on every read path', async () => {
      const store = await h.store<LedgerEvents>();
      const appended = await store.appendEvents(['acct', '1'], 0, [
        { type: 'Opened', data: { owner: 'ada' } },
        { type: 'Deposited', data: { cents: 5 } },
      ]);
      for (const event of appended) {
        expect(Number.isSafeInteger(event.position) && event.position > 0, `position ${event.position}`).toBe(true);
      }
      expect(appended[1]!.position).toBeGreaterThan(appended[0]!.position);
      const loaded = await store.getEvents(['acct', '1']);
      expect(loaded.map((event) => event.position)).toEqual(appended.map((event) => event.position));
      expect((await store.getSnapshot(['acct', '1'])).events.map((event) => event.position)).toEqual(appended.map((e) => e.position));
      const { events } = await readEverything(store);
      expect(events.map((event) => event.position)).toEqual(appended.map((event) => event.position));
      expect(events[0]!.toJSON().position).toBe(appended[0]!.position);
      const conflict = await store.appendEvents(['acct', '1'], 1, [{ type: 'Noted', data: { text: 'late' } }]).catch((e: unknown) => e);
      expect((conflict as VersionConflictError).newEvents.map((event) => event.position)).toEqual([appended[1]!.position]);
    });

    it('answers an empty page at the end of an empty log, and a checkpoint to resume from', async () => {
      const store = await h.store();
      const page = await store.readAll();
      expect(page.events).toEqual([]);
      expect(page.end).toBe(true);
      await store.appendEvents(['first'], 0, makeEvents(2));
      const next = await store.readAll({ after: page.checkpoint });
      expect(next.events.map((event) => event.sequence)).toEqual([0, 1]);
      expect(next.end).toBe(true);
    });

    it('reads a log larger than any page a backend might use internally exactly once, in order', async () => {
      const store = await h.store();
      const ids: AggregateId[] = Array.from({ length: 40 }, (_, i) => ['big', String(i)]);
      await fill(store, ids, 60, 20); // 2,400 events, appended 20 at a time round-robin
      for (const limit of [1000, 10_000, 333]) {
        const { events, pages } = await readEverything(store, { limit });
        expect(events).toHaveLength(2400);
        expect(new Set(events.map(keyOf)).size).toBe(2400);
        expect(pages).toBeGreaterThanOrEqual(Math.ceil(2400 / limit));
        if (partitionsOf(store) === 1) {
          const positions = events.map((event) => event.position);
          expect(positions).toEqual([...positions].sort((a, b) => a - b));
          // Appended sequentially, so the log order is the append order: batch by batch.
          expect(events.slice(0, 20).every((event) => sameId(event.aggregateId, ['big', '0']))).toBe(true);
          expect(events.slice(20, 40).every((event) => sameId(event.aggregateId, ['big', '1']))).toBe(true);
        }
      }
    });

    it('never returns more than limit events in a page', async () => {
      const store = await h.store();
      await store.appendEvents(['one-batch'], 0, makeEvents(25));
      const page = await store.readAll({ limit: 10 });
      expect(page.events.map((event) => event.sequence)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(page.end).toBe(false);
      const second = await store.readAll({ after: page.checkpoint, limit: 10 });
      expect(second.events.map((event) => event.sequence)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    });

    it('filters by event type and by aggregate prefix on part boundaries', async () => {
      const store = await h.store<LedgerEvents>();
      const ids: AggregateId[] = [['order', '1'], ['order', '10'], ['order:1'], ['order', '1', 'line'], ['Order', '1'], ['other']];
      for (const id of ids) {
        await store.appendEvents(id, 0, [
          { type: 'Opened', data: { owner: JSON.stringify(id) } },
          { type: 'Deposited', data: { cents: 1 } },
          { type: 'Noted', data: { text: 'n' } },
        ]);
      }
      const opened = await readEverything(store, { types: ['Opened'], limit: 2 });
      expect(opened.events.map((event) => event.type)).toEqual(ids.map(() => 'Opened'));
      expect(opened.events.map((event) => event.aggregateId)).toEqual(ids);
      const two = await readEverything(store, { types: ['Deposited', 'Noted'] });
      expect(two.events).toHaveLength(ids.length * 2);
      const underOrder1 = await readEverything(store, { aggregatePrefix: ['order', '1'], limit: 1 });
      expect(underOrder1.events.map((event) => event.aggregateId)).toEqual([
        ['order', '1'],
        ['order', '1'],
        ['order', '1'],
        ['order', '1', 'line'],
        ['order', '1', 'line'],
        ['order', '1', 'line'],
      ]);
      const both = await readEverything(store, { aggregatePrefix: ['order'], types: ['Noted'] });
      expect(both.events.map((event) => event.aggregateId)).toEqual([
        ['order', '1'],
        ['order', '10'],
        ['order', '1', 'line'],
      ]);
      const none = await readEverything(store, { types: ['Nothing'] });
      expect(none.events).toEqual([]);
      // Type names compared whole, as text: non-ASCII, one a prefix of another, with separators.
      const untyped = store as unknown as Store;
      const tricky = ['Prüfung', 'Prüf', 'Prüf:ung', '日本語', '日本', 'opened'];
      await untyped.appendEvents(
        ['types'],
        0,
        tricky.map((type) => ({ type, data: { type } })),
      );
      for (const type of tricky) {
        const page = await readEverything(untyped, { types: [type] });
        expect(
          page.events.map((event) => event.type),
          type,
        ).toEqual([type]);
      }
      expect((await readEverything(untyped, { types: ['Prüf', '日本'] })).events.map((event) => event.type)).toEqual(['Prüf', '日本']);
      // A filtered read still ends where the whole log ends: resuming from it sees only new events.
      const none2 = await readEverything(store, { types: ['Nothing'] });
      await store.appendEvents(['other'], 3, [{ type: 'Opened', data: { owner: 'late' } }]);
      const after = await store.readAll({ after: none2.checkpoint });
      expect(after.events.map((event) => event.sequence)).toEqual([3]);
    });

    it('leaves trimmed and archived events out of the log', async () => {
      const store = await h.store({ trimEvents: true });
      await store.appendEvents(['trimmed'], 0, makeEvents(5));
      await store.appendEvents(['kept'], 0, makeEvents(2));
      await store.putSnapshot(['trimmed'], { upTo: 3 }, 3);
      let keys = (await readEverything(store)).events.map(keyOf);
      expect(keys).toEqual(['["trimmed"]#3', '["trimmed"]#4', '["kept"]#0', '["kept"]#1']);
      if (store.backend.capabilities.archive) {
        await store.archive(['trimmed']);
        keys = (await readEverything(store, { limit: 1 })).events.map(keyOf);
        expect(keys).toEqual(['["kept"]#0', '["kept"]#1']);
      }
    });

    it('resumes from a checkpoint with exactly the events appended after it, from any store over the data', async () => {
      const [writer, reader] = await h.stores(2);
      await writer!.appendEvents(['a'], 0, makeEvents(3));
      const first = await readEverything(reader!);
      expect(first.events).toHaveLength(3);
      await writer!.appendEvents(['b'], 0, makeEvents(2));
      await writer!.appendEvents(['a'], 3, makeEvents(1, 3));
      const page = await writer!.readAll({ after: first.checkpoint });
      expect(page.events.map(keyOf)).toEqual(['["b"]#0', '["b"]#1', '["a"]#3']);
      expect(compareCheckpoints(first.checkpoint, page.checkpoint)).toBeLessThan(0);
      expect(compareCheckpoints(page.checkpoint, first.checkpoint)).toBeGreaterThan(0);
      expect(compareCheckpoints(page.checkpoint, page.checkpoint)).toBe(0);
    });

    it('starts from the head checkpoint with only later appends', async () => {
      const store = await h.store();
      await store.appendEvents(['before'], 0, makeEvents(3));
      const head = await store.headCheckpoint();
      const empty = await store.readAll({ after: head });
      expect(empty.events).toEqual([]);
      await store.appendEvents(['after'], 0, makeEvents(1));
      const page = await store.readAll({ after: head });
      expect(page.events.map(keyOf)).toEqual(['["after"]#0']);
      const fromStart = await store.readAll({ after: store.startCheckpoint });
      expect(fromStart.events).toHaveLength(4);
    });

    it('sees every event exactly once while many writers append during the read', async () => {
      const stores = await h.stores(4);
      const reader = stores[0]!;
      const seen: Event[] = [];
      let checkpoint = reader.startCheckpoint;
      let writing = true;
      const writers = stores.map(async (store, w) => {
        for (let round = 0; round < 15; round++) {
          for (let a = 0; a < 3; a++) await store.appendEvents(['race', String(w), String(a)], round * 2, makeEvents(2, round * 2));
        }
      });
      const done = Promise.all(writers).finally(() => {
        writing = false;
      });
      while (writing) {
        const page = await reader.readAll({ after: checkpoint, limit: 17 });
        seen.push(...page.events);
        checkpoint = page.checkpoint;
      }
      await done;
      for (;;) {
        const page = await reader.readAll({ after: checkpoint, limit: 17 });
        seen.push(...page.events);
        checkpoint = page.checkpoint;
        if (page.end) break;
      }
      expect(seen).toHaveLength(4 * 15 * 3 * 2);
      expect(new Set(seen.map(keyOf)).size).toBe(seen.length);
      if (partitionsOf(reader) === 1) {
        const positions = seen.map((event) => event.position);
        expect(positions).toEqual([...positions].sort((a, b) => a - b));
      }
      // Per aggregate, the log keeps sequence order.
      const byId = new Map<string, number[]>();
      for (const event of seen)
        byId.set(JSON.stringify(event.aggregateId), [...(byId.get(JSON.stringify(event.aggregateId)) ?? []), event.sequence]);
      for (const sequences of byId.values()) expect(sequences).toEqual(Array.from({ length: 30 }, (_, i) => i));
    });

    it('refuses a checkpoint that is not this store’s, altered, or from a newer format', async () => {
      const [store, other] = [await h.store(), await h.store()];
      await store.appendEvents(['x'], 0, makeEvents(3));
      await other.appendEvents(['x'], 0, makeEvents(1));
      const mine = (await store.readAll({ limit: 1 })).checkpoint;
      const theirs = (await other.readAll({ limit: 1 })).checkpoint;
      const refusal = async (after: unknown, says: RegExp) => {
        const error = await store.readAll({ after: after as string }).catch((e: unknown) => e);
        expect(error, String(after)).toBeInstanceOf(InvalidCheckpointError);
        expect((error as Error).message).toMatch(says);
      };
      await refusal(theirs, /another store/);
      await refusal(
        // The last position, raised by one (a checkpoint is `format.store.positions.checksum`, its
        // positions joined by '-', one per partition).
        mine.replace(/(\d+)(\.[0-9a-f]+)$/, (_m, p: string, rest: string) => `${Number(p) + 1}${rest}`),
        /altered|not a Timebox checkpoint/,
      );
      await refusal(`9${mine.slice(1)}`, /newer release/);
      await refusal('', /not a Timebox checkpoint/);
      await refusal('{"position":1}', /not a Timebox checkpoint/);
      await refusal(42, /must be a checkpoint string/);
      await refusal(null, /must be a checkpoint string/);
      // A valid checkpoint still works after the refusals.
      const page = await store.readAll({ after: mine, limit: 10 });
      expect(page.events.map((event) => event.sequence)).toEqual([1, 2]);
    });

    it('refuses a page size out of range and filters of the wrong shape', async () => {
      const store = await h.store();
      for (const limit of [0, -1, 1.5, 10_001, Number.NaN, '10']) {
        await expect(store.readAll({ limit: limit as number }), String(limit)).rejects.toBeInstanceOf(InvalidArgumentError);
      }
      await expect(store.readAll({ types: 'Opened' as unknown as string[] })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store.readAll({ types: [''] })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store.readAll({ aggregatePrefix: [1] as unknown as string[] })).rejects.toBeInstanceOf(InvalidAggregateIdError);
      await expect(store.readAll(null as unknown as ReadAllOptions)).rejects.toBeInstanceOf(InvalidArgumentError);
    });
  });

  if (h.target.capabilities.hub === true) {
    describe('the hub resuming from a checkpoint', () => {
      it('delivers the log after the checkpoint, then live events, each once and in order per aggregate', async () => {
        const [writer, subscriber] = await h.stores(2);
        await fill(
          writer!,
          [
            ['r', '1'],
            ['r', '2'],
          ],
          6,
          3,
        );
        const middle = (await subscriber!.readAll({ limit: 5 })).checkpoint;
        const seen: string[] = [];
        let expected = 12 - 5 + 8;
        let arrived: () => void = () => undefined;
        const all = new Promise<void>((resolve) => (arrived = resolve));
        const errors: unknown[] = [];
        const stop = await subscriber!.subscribe(
          (event) => {
            seen.push(keyOf(event));
            if (--expected === 0) arrived();
          },
          { after: middle, onError: (error) => void errors.push(error) },
        );
        for (let round = 0; round < 4; round++) {
          await writer!.appendEvents(['r', '1'], 6 + round, makeEvents(1, 6 + round));
          await writer!.appendEvents(['r', '3'], round, makeEvents(1, round));
        }
        await all;
        await stop();
        expect(new Set(seen).size).toBe(seen.length);
        const sequencesOf = (id: string) => seen.filter((key) => key.startsWith(id)).map((key) => Number(key.split('#')[1]));
        const first = (await subscriber!.readAll({ limit: 5 })).events.map(keyOf);
        expect(seen.some((key) => first.includes(key))).toBe(false);
        expect(sequencesOf('["r","1"]')).toEqual([...sequencesOf('["r","1"]')].sort((a, b) => a - b));
        expect(sequencesOf('["r","3"]')).toEqual([0, 1, 2, 3]);
        expect(errors).toEqual([]);
      });

      it('fills a gap from the log instead of reporting lost events', async () => {
        const store = await h.store();
        const seen: string[] = [];
        const errors: unknown[] = [];
        let expected = 60;
        let arrived: () => void = () => undefined;
        const all = new Promise<void>((resolve) => (arrived = resolve));
        const stop = await store.subscribe(
          async (event) => {
            seen.push(keyOf(event));
            await new Promise((resolve) => setImmediate(resolve));
            if (--expected === 0) arrived();
          },
          { after: store.startCheckpoint, bufferSize: 2, onError: (error) => void errors.push(error) },
        );
        for (let i = 0; i < 20; i++) await store.appendEvents(['gap', String(i % 4)], Math.floor(i / 4) * 3, makeEvents(3));
        await all;
        await stop();
        expect(seen).toHaveLength(60);
        expect(new Set(seen).size).toBe(60);
        expect(errors).toEqual([]);
      });

      it('refuses a checkpoint of another store', async () => {
        const [store, other] = [await h.store(), await h.store()];
        await other.appendEvents(['o'], 0, makeEvents(1));
        const theirs = (await other.readAll()).checkpoint;
        await expect(store.subscribe(() => undefined, { after: theirs })).rejects.toBeInstanceOf(InvalidCheckpointError);
      });
    });
  }

  lifeSuite(h);
}

/** One life per aggregate ID (archiving ends a life; a later append starts the next), for backends that archive. */
function lifeSuite(h: Harness): void {
  if (!h.target.capabilities.archive) return;

  describe('one life per aggregate ID', () => {
    type Account = { owner: string; cents: number; events: number };
    const accounts = (store: Store<LedgerEvents>) =>
      createExecutor<Account, LedgerEvents>(store, {
        initialState: () => ({ owner: '', cents: 0, events: 0 }),
        appliers: {
          Opened: (state, { owner }) => ({ ...state, owner, events: state.events + 1 }),
          Deposited: (state, { cents }) => ({ ...state, cents: state.cents + cents, events: state.events + 1 }),
        },
      });
    const open =
      (owner: string, cents: number): Command<Account, LedgerEvents> =>
      (_state, account) => {
        account.raise('Opened', { owner });
        account.raise('Deposited', { cents });
      };

    it('a stale executor in the same process never mixes the archived life into the new one', async () => {
      const store = await h.store<LedgerEvents>();
      const stale = accounts(store);
      const fresh = accounts(store);
      const id = ['acct', 'reborn'];
      await stale.exec(id, open('old', 100));
      await stale.exec(id, (_s, account) => account.raise('Deposited', { cents: 50 }));
      await store.archive(id);
      await fresh.exec(id, open('new', 7));
      expect(await fresh.get(id)).toEqual({ owner: 'new', cents: 7, events: 2 });
      // `stale` still caches the old life at its next sequence.
      const decidedOn: string[] = [];
      const after = await stale.exec(id, (state, account) => {
        decidedOn.push(state.owner);
        account.raise('Deposited', { cents: 1 });
      });
      expect(decidedOn.at(-1)).toBe('new');
      expect(after).toEqual({ owner: 'new', cents: 8, events: 3 });
      expect(await stale.get(id)).toEqual(after);
      const sequences = (await store.getEvents(id)).map((event) => event.sequence);
      expect(sequences[0]).toBeGreaterThan(2);
      expect(sequences).toEqual([sequences[0], sequences[0]! + 1, sequences[0]! + 2]);
    });

    it('a stale executor in another process reloads the new life, and its snapshot is of the new life', async () => {
      const [mine, theirs] = await h.stores<LedgerEvents>(2);
      const stale = accounts(mine!);
      const other = accounts(theirs!);
      const id = ['acct', 'two-processes'];
      await stale.exec(id, open('old', 100));
      await theirs!.archive(id);
      await other.exec(id, open('new', 3));
      // Without an exec, `stale` must still notice the new life before saving a snapshot.
      await stale.saveSnapshot(id);
      const snapshot = await theirs!.getSnapshot<Account>(id);
      expect(snapshot.value).toEqual({ owner: 'new', cents: 3, events: 2 });
      expect(await accounts(theirs!).get(id)).toEqual({ owner: 'new', cents: 3, events: 2 });
      const readOnly = await stale.exec(id, () => undefined);
      expect(readOnly).toEqual({ owner: 'new', cents: 3, events: 2 });
    });

    it('an append expecting a sequence of the archived life is a conflict and stores nothing', async () => {
      const store = await h.store<LedgerEvents>();
      const id = ['acct', 'stale-append'];
      await store.appendEvents(id, 0, [{ type: 'Opened', data: { owner: 'old' } }]);
      await store.archive(id);
      for (const expected of [0, 1]) {
        const error = await store.appendEvents(id, expected, [{ type: 'Deposited', data: { cents: 1 } }]).catch((e: unknown) => e);
        expect(error, `expected ${expected}`).toBeInstanceOf(VersionConflictError);
        expect((error as VersionConflictError).newEvents).toEqual([]);
      }
      expect(await store.getEvents(id)).toEqual([]);
      expect(await store.listAggregates(['acct'])).toEqual([]);
      const next = (await store.getSnapshot(id)).nextSequence;
      expect(next).toBeGreaterThan(1);
      await store.appendEvents(id, next, [{ type: 'Opened', data: { owner: 'new' } }]);
      // A command decided on the new life's start lands; one decided on the old life's end does not.
      const late = await store.appendEvents(id, 1, [{ type: 'Deposited', data: { cents: 1 } }]).catch((e: unknown) => e);
      expect(late).toBeInstanceOf(VersionConflictError);
      expect((late as VersionConflictError).newEvents.map((event) => event.sequence)).toEqual([next]);
      expect(await store.listAggregates(['acct'])).toEqual([id]);
    });

    it('an old life’s snapshot never lands in the new life', async () => {
      const store = await h.store<LedgerEvents>();
      const id = ['acct', 'old-snapshot'];
      await store.appendEvents(id, 0, [
        { type: 'Opened', data: { owner: 'old' } },
        { type: 'Deposited', data: { cents: 9 } },
      ]);
      await store.putSnapshot(id, { owner: 'old', cents: 9, events: 2 }, 2);
      await store.archive(id);
      // A writer that read the old life saves a snapshot at its sequence: ignored.
      await store.putSnapshot(id, { owner: 'old', cents: 9, events: 2 }, 2);
      let snapshot = await store.getSnapshot(id);
      expect(snapshot.value).toBeUndefined();
      await store.appendEvents(id, snapshot.nextSequence, [{ type: 'Opened', data: { owner: 'new' } }]);
      await store.putSnapshot(id, { owner: 'old', cents: 9, events: 2 }, 2);
      snapshot = await store.getSnapshot(id);
      expect(snapshot.value).toBeUndefined();
      expect(snapshot.events.map((event) => event.payload)).toEqual([{ owner: 'new' }]);
      expect(await accounts(store).get(id)).toEqual({ owner: 'new', cents: 0, events: 1 });
    });

    it('a trimmed or snapshot-only life is archived whole and the next life still starts past it', async () => {
      const store = await h.store<LedgerEvents>({ trimEvents: true });
      const id = ['acct', 'trimmed'];
      await store.appendEvents(id, 0, [
        { type: 'Opened', data: { owner: 'old' } },
        { type: 'Deposited', data: { cents: 2 } },
      ]);
      await store.putSnapshot(id, { owner: 'old', cents: 2, events: 2 }, 2);
      expect(await store.getEvents(id)).toEqual([]);
      await store.archive(id);
      const next = (await store.getSnapshot(id)).nextSequence;
      expect(next).toBeGreaterThan(2);
      const executor = accounts(store);
      expect(await executor.exec(id, open('new', 1))).toEqual({ owner: 'new', cents: 1, events: 2 });
      expect((await store.getEvents(id)).map((event) => event.sequence)).toEqual([next, next + 1]);
    });
  });
}

function sameId(a: AggregateId, b: AggregateId): boolean {
  return a.length === b.length && a.every((part, i) => part === b[i]);
}
