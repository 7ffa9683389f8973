import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, InvalidCursorError } from '../errors.js';
import type { AggregateId } from '../id.js';
import type { Index } from '../indexer.js';
import type { Page, PageOptions } from '../list-page.js';
import type { Harness } from './harness.js';
import { payloadIndexer, sortIds, T0 } from './util.js';

type IndexEvents = { Set: Index };

/** Many more items than one page holds: `LIMIT` pages of 7 make this 18 pages. */
const ITEMS = 120;
const LIMIT = 7;

function set(index: Index, at: number): { type: 'Set'; data: Index; timestamp: Date } {
  return { type: 'Set', data: index, timestamp: new Date(T0 + at) };
}

/** Runs `writes` in waves of 20 at a time. */
async function inWaves(count: number, write: (i: number) => Promise<unknown>): Promise<void> {
  for (let start = 0; start < count; start += 20) {
    await Promise.all(Array.from({ length: Math.min(20, count - start) }, (_, k) => write(start + k)));
  }
}

/** Reads every page of a list, calling `between` after each page but the last; returns the pages. */
async function readPages<T>(
  read: (page: PageOptions) => Promise<Page<T>>,
  between: (pageIndex: number) => Promise<void> = async () => undefined,
): Promise<T[][]> {
  const pages: T[][] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await read({ limit: LIMIT, cursor });
    expect(page.items.length, 'a page never returns more than the limit').toBeLessThanOrEqual(LIMIT);
    pages.push(page.items);
    if (page.cursor === undefined) return pages;
    expect(pages.length, 'paging ends').toBeLessThan(ITEMS * 2);
    cursor = page.cursor;
    await between(pages.length - 1);
  }
}

const keyOf = (id: AggregateId): string => JSON.stringify(id);

/** Expects no item twice, and every item of `stayed` exactly once. */
function expectOnceEach(seen: readonly string[], stayed: readonly string[]): void {
  const counts = new Map<string, number>();
  for (const key of seen) counts.set(key, (counts.get(key) ?? 0) + 1);
  const twice = [...counts].filter(([, n]) => n > 1).map(([key]) => key);
  expect(twice, 'items seen twice').toEqual([]);
  const missing = stayed.filter((key) => !counts.has(key));
  expect(missing, 'items that stayed put but were skipped').toEqual([]);
}

export function pagingSuite(h: Harness): void {
  describe('paged queries', () => {
    it('pages aggregates by prefix, status, label and label values: never returns more than the limit, and the pages together are the whole list', async () => {
      const store = await h.store<IndexEvents>({ indexer: payloadIndexer });
      const ids: AggregateId[] = Array.from({ length: ITEMS }, (_, i) => ['page', String(i)]);
      await inWaves(ITEMS, (i) =>
        store.appendEvents(ids[i]!, 0, [set({ status: 'open', labels: { bucket: 'all', value: `v${i % 40}` } }, i * 1000)]),
      );
      await store.appendEvents(['pages'], 0, [set({ status: 'open', labels: { bucket: 'other' } }, -1)]);

      const byPrefix = (await readPages((page) => store.listAggregates(['page'], page))).flat();
      expect(sortIds(byPrefix)).toEqual(sortIds(ids));
      expect(byPrefix).toHaveLength(ITEMS);
      const all = (await readPages((page) => store.listAggregates([], page))).flat();
      expect(sortIds(all)).toEqual(sortIds([...ids, ['pages']]));

      const byStatus = (await readPages((page) => store.listAggregatesByStatus('open', page))).flat();
      expect(byStatus.map((entry) => entry.id)).toEqual([['pages'], ...ids]);
      expect(byStatus.map((entry) => entry.timestamp.getTime())).toEqual([T0 - 1, ...ids.map((_, i) => T0 + i * 1000)]);

      const byLabel = (await readPages((page) => store.listAggregatesByLabel('bucket', 'all', page))).flat();
      expect(sortIds(byLabel)).toEqual(sortIds(ids));
      expect(byLabel).toHaveLength(ITEMS);

      const values = (await readPages((page) => store.listLabelValues('value', page))).flat();
      expect([...values].sort()).toEqual(Array.from({ length: 40 }, (_, i) => `v${i}`).sort());
      expect(new Set(values).size).toBe(40);
    });

    it('answers a page larger than the list with every item and no cursor, and an empty list with an empty page', async () => {
      const store = await h.store<IndexEvents>({ indexer: payloadIndexer });
      for (let i = 0; i < 3; i++) await store.appendEvents(['few', String(i)], 0, [set({ status: 's', labels: { l: `v${i}` } }, i)]);
      const whole = await store.listAggregates(['few'], { limit: 10 });
      expect(sortIds(whole.items)).toEqual([
        ['few', '0'],
        ['few', '1'],
        ['few', '2'],
      ]);
      expect(whole.cursor).toBeUndefined();
      const exact = await store.listAggregatesByStatus('s', { limit: 3 });
      expect(exact.items).toHaveLength(3);
      if (exact.cursor !== undefined) {
        await expect(store.listAggregatesByStatus('s', { limit: 3, cursor: exact.cursor })).resolves.toEqual({
          items: [],
          cursor: undefined,
        });
      }
      await expect(store.listAggregates(['none'], { limit: 5 })).resolves.toEqual({ items: [], cursor: undefined });
      await expect(store.listAggregatesByStatus('none', { limit: 5 })).resolves.toEqual({ items: [], cursor: undefined });
      await expect(store.listAggregatesByLabel('l', 'none', { limit: 5 })).resolves.toEqual({ items: [], cursor: undefined });
      await expect(store.listLabelValues('none', { limit: 5 })).resolves.toEqual({ items: [], cursor: undefined });
      const one = await store.listLabelValues('l', { limit: 1 });
      expect(one.items).toHaveLength(1);
      expect(one.cursor).toBeDefined();
    });

    it('lists by part-wise prefix across pages, with nothing a string prefix would add', async () => {
      const store = await h.store();
      const under: AggregateId[] = [['order'], ...Array.from({ length: 30 }, (_, i) => ['order', String(i)])];
      const others: AggregateId[] = [['order!'], ['order:1'], ['orders', '1'], ['order\u0000'], ['ordep'], ['ordes']];
      await inWaves(under.length + others.length, (i) => store.appendEvents([...under, ...others][i]!, 0, [set({}, i)]));
      const pages = await readPages((page) => store.listAggregates(['order'], page));
      expect(sortIds(pages.flat())).toEqual(sortIds(under));
    });

    it('while items change between pages, returns no item twice and skips none that stayed put', async () => {
      const store = await h.store<IndexEvents>({ indexer: payloadIndexer });
      const ids: AggregateId[] = Array.from({ length: 60 }, (_, i) => ['moving', String(i).padStart(3, '0')]);
      await inWaves(ids.length, (i) => store.appendEvents(ids[i]!, 0, [set({ status: 'open', labels: { team: 'a' } }, i * 10)]));
      // After each page: one aggregate leaves (status and label cleared), and one new one arrives.
      const leaving = new Set<string>();
      let next = 0;
      const change = async (pageIndex: number): Promise<void> => {
        const gone = ids[(pageIndex * 13 + 5) % ids.length]!;
        if (!leaving.has(keyOf(gone))) {
          leaving.add(keyOf(gone));
          await store.appendEvents(gone, 1, [set({ status: '', labels: { team: '' } }, 100_000)]);
        }
        const arrival: AggregateId = ['moving', `n${next++}`];
        await store.appendEvents(arrival, 0, [set({ status: 'open', labels: { team: 'a' } }, 200_000 + next)]);
      };
      const stayed = () => ids.map(keyOf).filter((key) => !leaving.has(key));

      const statusSeen = (await readPages((page) => store.listAggregatesByStatus('open', page), change)).flat();
      expectOnceEach(
        statusSeen.map((entry) => keyOf(entry.id)),
        stayed(),
      );
      const times = statusSeen.map((entry) => entry.timestamp.getTime());
      expect(times, 'oldest first across pages').toEqual([...times].sort((a, b) => a - b));

      const labelSeen = (await readPages((page) => store.listAggregatesByLabel('team', 'a', page), change)).flat();
      expectOnceEach(labelSeen.map(keyOf), stayed());

      // New aggregates (not removed: every ID stays listed) arrive between pages of listAggregates.
      const listed = (await readPages((page) => store.listAggregates(['moving'], page), change)).flat();
      expectOnceEach(listed.map(keyOf), ids.map(keyOf));
    });

    it('while label values come and go between pages, returns no value twice and skips none that stayed put', async () => {
      const store = await h.store<IndexEvents>({ indexer: payloadIndexer });
      const values = Array.from({ length: 50 }, (_, i) => `value-${String(i).padStart(3, '0')}`);
      await inWaves(values.length, (i) => store.appendEvents(['holder', String(i)], 0, [set({ labels: { kind: values[i]! } }, i)]));
      const removed = new Set<string>();
      const change = async (pageIndex: number): Promise<void> => {
        const i = (pageIndex * 11 + 3) % values.length;
        if (!removed.has(values[i]!)) {
          removed.add(values[i]!);
          await store.appendEvents(['holder', String(i)], 1, [set({ labels: { kind: '' } }, 1000)]);
        }
        await store.appendEvents(['newcomer', String(pageIndex)], 0, [set({ labels: { kind: `added-${pageIndex}` } }, 2000)]);
      };
      const seen = (await readPages((page) => store.listLabelValues('kind', page), change)).flat();
      expectOnceEach(
        seen,
        values.filter((value) => !removed.has(value)),
      );
    });

    it('refuses a cursor of another query, another store or no cursor at all with InvalidCursorError', async () => {
      const namespace = await h.namespace();
      const store = await h.store<IndexEvents>({ indexer: payloadIndexer }, namespace);
      const sameData = await h.store<IndexEvents>({ indexer: payloadIndexer }, namespace);
      const other = await h.store<IndexEvents>({ indexer: payloadIndexer });
      for (let i = 0; i < 5; i++) {
        const index = { status: 'open', labels: { color: i % 2 === 0 ? 'red' : 'blue', size: 'L' } };
        await store.appendEvents(['a', String(i)], 0, [set(index, i)]);
        await store.appendEvents(['b', String(i)], 0, [set(index, i)]);
        await other.appendEvents(['a', String(i)], 0, [set(index, i)]);
      }
      const byA = await store.listAggregates(['a'], { limit: 2 });
      const red = await store.listAggregatesByLabel('color', 'red', { limit: 1 });
      const open = await store.listAggregatesByStatus('open', { limit: 2 });
      const colors = await store.listLabelValues('color', { limit: 1 });
      for (const page of [byA, red, open, colors]) expect(page.cursor).toBeDefined();

      const refused: [string, () => Promise<unknown>][] = [
        ['another prefix', () => store.listAggregates(['b'], { limit: 2, cursor: byA.cursor })],
        ['the whole list', () => store.listAggregates([], { limit: 2, cursor: byA.cursor })],
        ['another label value', () => store.listAggregatesByLabel('color', 'blue', { limit: 1, cursor: red.cursor })],
        ['another label', () => store.listAggregatesByLabel('size', 'red', { limit: 1, cursor: red.cursor })],
        ['another kind of query', () => store.listAggregatesByStatus('open', { limit: 2, cursor: red.cursor })],
        ['label values of another label', () => store.listLabelValues('size', { limit: 1, cursor: colors.cursor })],
        ['another status', () => store.listAggregatesByStatus('closed', { limit: 2, cursor: open.cursor })],
        ['another store', () => other.listAggregates(['a'], { limit: 2, cursor: byA.cursor })],
        ['another store, by label', () => other.listAggregatesByLabel('color', 'red', { limit: 1, cursor: red.cursor })],
        ['text that is no cursor', () => store.listAggregates(['a'], { limit: 2, cursor: 'not-a-cursor' })],
        ['an altered cursor', () => store.listAggregates(['a'], { limit: 2, cursor: alter(byA.cursor!) })],
        ['a number', () => store.listAggregates(['a'], { limit: 2, cursor: 42 as unknown as string })],
      ];
      for (const [what, call] of refused) await expect(call(), what).rejects.toBeInstanceOf(InvalidCursorError);

      // The same query over the same data (another connection, as another process) goes on.
      const rest = await sameData.listAggregates(['a'], { limit: 10, cursor: byA.cursor });
      expect(sortIds([...byA.items, ...rest.items])).toEqual(sortIds(Array.from({ length: 5 }, (_, i) => ['a', String(i)])));
      expect(rest.cursor).toBeUndefined();
    });

    it('refuses a page limit outside 1 to 10,000 with InvalidArgumentError', async () => {
      const store = await h.store();
      for (const limit of [0, -1, 1.5, 10_001, Number.NaN, '5' as unknown as number]) {
        await expect(store.listAggregates([], { limit }), String(limit)).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(store.listLabelValues('l', { limit }), String(limit)).rejects.toBeInstanceOf(InvalidArgumentError);
      }
      await expect(store.listAggregates([], { limit: 10_000 })).resolves.toEqual({ items: [], cursor: undefined });
    });

    it('iterates every item of each list page by page', async () => {
      const store = await h.store<IndexEvents>({ indexer: payloadIndexer });
      const ids: AggregateId[] = Array.from({ length: 25 }, (_, i) => ['iter', String(i)]);
      await inWaves(ids.length, (i) => store.appendEvents(ids[i]!, 0, [set({ status: 'open', labels: { tag: `t${i % 5}` } }, i)]));
      const collect = async <T>(items: AsyncIterable<T>): Promise<T[]> => {
        const out: T[] = [];
        for await (const item of items) out.push(item);
        return out;
      };
      expect(sortIds(await collect(store.iterateAggregates(['iter'], { pageSize: 4 })))).toEqual(sortIds(ids));
      const byStatus = await collect(store.iterateAggregatesByStatus('open', { pageSize: 3 }));
      expect(byStatus.map((entry) => entry.id)).toEqual(ids);
      expect(sortIds(await collect(store.iterateAggregatesByLabel('tag', 't1', { pageSize: 2 })))).toEqual(
        sortIds(ids.filter((_, i) => i % 5 === 1)),
      );
      expect((await collect(store.iterateLabelValues('tag', { pageSize: 2 }))).sort()).toEqual(['t0', 't1', 't2', 't3', 't4']);
      expect(() => store.iterateAggregates([], { pageSize: 0 })).toThrow(InvalidArgumentError);
      if (h.target.capabilities.readSide === true) {
        const events = await collect(store.iterateAll({ limit: 6 }));
        expect(events).toHaveLength(ids.length);
        expect(sortIds(events.map((event) => event.aggregateId))).toEqual(sortIds(ids));
      }
    });
  });
}

/** The cursor with one character of its payload changed. */
function alter(cursor: string): string {
  const parts = cursor.split('.');
  const payload = parts[2] ?? '';
  parts[2] = (payload[0] === 'A' ? 'B' : 'A') + payload.slice(1);
  return parts.join('.');
}
