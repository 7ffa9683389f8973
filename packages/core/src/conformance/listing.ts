import { describe, expect, it } from 'vitest';
import type { AggregateId } from '../id.js';
import type { Index } from '../indexer.js';
import type { Harness } from './harness.js';
import { readEverything } from './read-side.js';
import { TRICKY_IDS } from './tricky.js';
import { makeEvents, payloadIndexer, sortIds } from './util.js';

export function listingSuite(h: Harness): void {
  describe('aggregate listing and ID escaping', () => {
    it('keeps IDs that differ only in how their parts split, in case or in Unicode normalization as distinct aggregates', async () => {
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

    it('lists by whole tricky IDs and their parts as prefixes, with nothing a pattern or a string prefix would add', async () => {
      const store = await h.store();
      for (const id of TRICKY_IDS) await store.appendEvents(id, 0, makeEvents(1));
      // Every prefix of every ID, each must list exactly the IDs it is a part-wise prefix of.
      const prefixes = new Map<string, AggregateId>();
      for (const id of TRICKY_IDS) for (let n = 1; n <= id.length; n++) prefixes.set(JSON.stringify(id.slice(0, n)), id.slice(0, n));
      for (const prefix of ['gl', 'like', 'lik', 'Cas', 'stra', 'e', '[', 'order:', 'mem', 'back\\'])
        prefixes.set(JSON.stringify([prefix]), [prefix]);
      const readSide = h.target.capabilities.readSide === true;
      for (const [key, prefix] of prefixes) {
        const expected = sortIds(TRICKY_IDS.filter((id) => isPartwisePrefix(prefix, id)));
        expect(sortIds(await store.listAggregates(prefix)), key).toEqual(expected);
        if (readSide) {
          const page = await readEverything(store, { aggregatePrefix: prefix });
          expect(sortIds(page.events.map((event) => event.aggregateId)), `readAll ${key}`).toEqual(expected);
        }
      }
    });

    it('lists an aggregate that has only a snapshot', async () => {
      const store = await h.store({ trimEvents: true });
      await store.appendEvents(['snap', 'only'], 0, makeEvents(2));
      await store.putSnapshot(['snap', 'only'], { total: 2 }, 2);
      await expect(store.getEvents(['snap', 'only'])).resolves.toEqual([]);
      expect(await store.listAggregates(['snap'])).toEqual([['snap', 'only']]);
    });

    it('hands every listing to the caller to change: changing it changes nothing the store answers next', async () => {
      const store = await h.store<{ Set: Index }>({ indexer: payloadIndexer });
      for (const part of ['1', '2']) {
        await store.appendEvents(['own', part], 0, [{ type: 'Set', data: { status: 'open', labels: { k: `v${part}`, all: 'yes' } } }]);
      }
      const ask = async () => ({
        all: await store.listAggregates(),
        prefixed: await store.listAggregates(['own']),
        byStatus: await store.listAggregatesByStatus('open'),
        byLabel: await store.listAggregatesByLabel('all', 'yes'),
        values: await store.listLabelValues('k'),
      });
      const first = await ask();
      const expected = structuredClone(first);
      // The caller edits everything it got back, in place.
      for (const ids of [first.all, first.prefixed, first.byLabel, first.byStatus.map((entry) => entry.id)]) {
        for (const id of ids) {
          (id as string[])[0] = 'changed';
          (id as string[]).push('more');
        }
        ids.push(['added']);
        ids.reverse();
      }
      first.byStatus.push({ id: ['added'], timestamp: new Date(0) });
      first.byStatus[0]!.timestamp.setTime(0);
      first.values.push('added');
      first.values.reverse();
      first.values[0] = 'changed';
      const again = await ask();
      expect(again).toEqual(expected);
      expect(sortIds(again.all)).toEqual([
        ['own', '1'],
        ['own', '2'],
      ]);
      expect(again.values).toEqual(['v1', 'v2']);
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

function isPartwisePrefix(prefix: AggregateId, id: AggregateId): boolean {
  return prefix.length <= id.length && prefix.every((part, i) => part === id[i]);
}
