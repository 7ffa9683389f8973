import { describe, expect, it } from 'vitest';
import type { AggregateId } from '../id.js';
import type { Harness } from './harness.js';
import { makeEvents, sortIds } from './util.js';

/** IDs that a backend joining parts naively, or escaping carelessly, would confuse. */
export const TRICKY_IDS: readonly AggregateId[] = [
  ['order:1', 'item'],
  ['order', '1', 'item'],
  ['order', '1:item'],
  ['mem\x1f1', 'item'],
  ['mem', '1\x1fitem'],
  ['back\\slash', 'x'],
  ['back', '\\slash:x'],
  ['per%cent', '%3A'],
  ['per', 'cent%3A'],
  ['{brace}', 'tag'],
  ['{brace', '}tag'],
  ['quote\'"', '`tick`'],
  ['', 'empty first'],
  ['empty last', ''],
  ['*'],
  ['?[a-z]'],
  ['ünïcødé', '日本語', '🙂'],
  ['new\nline', 'tab\there'],
  ['space ', ' space'],
];

export function listingSuite(h: Harness): void {
  describe('aggregate listing and ID escaping', () => {
    it('keeps IDs that differ only in how their parts split as distinct aggregates', async () => {
      const store = await h.store();
      for (const [i, id] of TRICKY_IDS.entries()) {
        await store.appendEvents(id, 0, makeEvents(1, i));
      }
      for (const [i, id] of TRICKY_IDS.entries()) {
        const events = await store.getEvents(id);
        expect(
          events.map((event) => event.payload),
          JSON.stringify(id),
        ).toEqual([{ n: i }]);
        expect(events[0]!.aggregateId).toEqual(id);
      }
      expect(sortIds(await store.listAggregates())).toEqual(sortIds(TRICKY_IDS));
    });

    it('lists by part-wise prefix, not by string prefix', async () => {
      const store = await h.store();
      const ids: AggregateId[] = [['order', '1'], ['order', '2', 'line'], ['orders', '1'], ['order:1'], ['order'], ['other']];
      for (const id of ids) await store.appendEvents(id, 0, makeEvents(1));
      expect(sortIds(await store.listAggregates(['order']))).toEqual(sortIds([['order', '1'], ['order', '2', 'line'], ['order']]));
      expect(sortIds(await store.listAggregates(['order', '2']))).toEqual([['order', '2', 'line']]);
      expect(await store.listAggregates(['order', '3'])).toEqual([]);
      expect(sortIds(await store.listAggregates([]))).toEqual(sortIds(ids));
      expect(sortIds(await store.listAggregates())).toEqual(sortIds(ids));
    });

    it('lists by prefixes holding separator and escape characters exactly', async () => {
      const store = await h.store();
      for (const id of TRICKY_IDS) await store.appendEvents(id, 0, makeEvents(1));
      for (const id of TRICKY_IDS) {
        const prefix = id.slice(0, 1);
        const expected = TRICKY_IDS.filter((other) => other[0] === prefix[0]);
        expect(sortIds(await store.listAggregates(prefix)), JSON.stringify(prefix)).toEqual(sortIds(expected));
      }
    });

    it('lists an aggregate that has only a snapshot', async () => {
      const store = await h.store({ trimEvents: true });
      await store.appendEvents(['snap', 'only'], 0, makeEvents(2));
      await store.putSnapshot(['snap', 'only'], { total: 2 }, 2);
      await expect(store.getEvents(['snap', 'only'])).resolves.toEqual([]);
      expect(await store.listAggregates(['snap'])).toEqual([['snap', 'only']]);
    });

    it('keeps stores in different namespaces apart', async () => {
      const first = await h.store();
      const second = await h.store();
      await first.appendEvents(['mine'], 0, makeEvents(1));
      await expect(second.listAggregates()).resolves.toEqual([]);
      await expect(second.getEvents(['mine'])).resolves.toEqual([]);
    });
  });
}
