import { describe, expect, it } from 'vitest';
import type { Index } from '../indexer.js';
import { compareCodeUnits } from '../text.js';
import type { Harness } from './harness.js';
import { TRICKY_VALUES } from './tricky.js';
import { payloadIndexer, sortIds, T0 } from './util.js';

type IndexEvents = { Set: Index; Other: { note: string } };

function set(index: Index, at = 0): { type: 'Set'; data: Index; timestamp: Date } {
  return { type: 'Set', data: index, timestamp: new Date(T0 + at) };
}

export function indexingSuite(h: Harness): void {
  describe('indexing', () => {
    it('records the status with the time of the batch’s last event', async () => {
      const store = await h.store<IndexEvents>({ indexer: payloadIndexer });
      await store.appendEvents(['o', '1'], 0, [
        set({ status: 'open' }, 1000),
        { type: 'Other', data: { note: 'x' }, timestamp: new Date(T0 + 2000) },
      ]);
      await expect(store.getAggregateStatus(['o', '1'])).resolves.toBe('open');
      const entries = await store.listAggregatesByStatus('open');
      expect(entries).toEqual([{ id: ['o', '1'], timestamp: new Date(T0 + 2000) }]);
    });

    it('lists a status oldest entry first and keeps the entry time when re-asserted', async () => {
      const store = await h.store<IndexEvents>({ indexer: payloadIndexer });
      await store.appendEvents(['b'], 0, [set({ status: 'open' }, 5000)]);
      await store.appendEvents(['a'], 0, [set({ status: 'open' }, 1000)]);
      await store.appendEvents(['c'], 0, [set({ status: 'open' }, 9000)]);
      await store.appendEvents(['a'], 1, [set({ status: 'open' }, 20000)]);
      const entries = await store.listAggregatesByStatus('open');
      expect(entries.map((entry) => entry.id)).toEqual([['a'], ['b'], ['c']]);
      expect(entries.map((entry) => entry.timestamp.getTime())).toEqual([T0 + 1000, T0 + 5000, T0 + 9000]);
    });

    it('moves an aggregate between statuses and clears it with ""', async () => {
      const store = await h.store<IndexEvents>({ indexer: payloadIndexer });
      await store.appendEvents(['o'], 0, [set({ status: 'open' }, 1)]);
      await store.appendEvents(['o'], 1, [set({ status: 'shipped' }, 2)]);
      await expect(store.listAggregatesByStatus('open')).resolves.toEqual([]);
      await expect(store.listAggregatesByStatus('shipped')).resolves.toEqual([{ id: ['o'], timestamp: new Date(T0 + 2) }]);
      await store.appendEvents(['o'], 2, [set({ status: '' }, 3)]);
      await expect(store.getAggregateStatus(['o'])).resolves.toBe('');
      await expect(store.listAggregatesByStatus('shipped')).resolves.toEqual([]);
      await store.appendEvents(['o'], 3, [set({ status: 'open' }, 4)]);
      await expect(store.listAggregatesByStatus('open')).resolves.toEqual([{ id: ['o'], timestamp: new Date(T0 + 4) }]);
    });

    it('folds a batch: the last status wins and labels merge', async () => {
      const store = await h.store<IndexEvents>({ indexer: payloadIndexer });
      await store.appendEvents(['f'], 0, [
        set({ status: 'open', labels: { color: 'red', size: 'L' } }, 1),
        set({ status: 'paid', labels: { color: 'blue' } }, 2),
        set({ labels: { shape: 'round' } }, 3),
      ]);
      await expect(store.getAggregateStatus(['f'])).resolves.toBe('paid');
      await expect(store.listAggregatesByStatus('open')).resolves.toEqual([]);
      await expect(store.listAggregatesByStatus('paid')).resolves.toEqual([{ id: ['f'], timestamp: new Date(T0 + 3) }]);
      await expect(store.listAggregatesByLabel('color', 'blue')).resolves.toEqual([['f']]);
      await expect(store.listAggregatesByLabel('color', 'red')).resolves.toEqual([]);
      await expect(store.listAggregatesByLabel('size', 'L')).resolves.toEqual([['f']]);
      await expect(store.listAggregatesByLabel('shape', 'round')).resolves.toEqual([['f']]);
    });

    it('changes and removes labels, and lists distinct values sorted', async () => {
      const store = await h.store<IndexEvents>({ indexer: payloadIndexer });
      await store.appendEvents(['1'], 0, [set({ labels: { region: 'west' } })]);
      await store.appendEvents(['2'], 0, [set({ labels: { region: 'east' } })]);
      await store.appendEvents(['3'], 0, [set({ labels: { region: 'west' } })]);
      await store.appendEvents(['4'], 0, [set({ labels: { region: 'East' } })]);
      await expect(store.listLabelValues('region')).resolves.toEqual(['East', 'east', 'west']);
      expect(sortIds(await store.listAggregatesByLabel('region', 'west'))).toEqual([['1'], ['3']]);

      await store.appendEvents(['3'], 1, [set({ labels: { region: 'north' } })]);
      expect(sortIds(await store.listAggregatesByLabel('region', 'west'))).toEqual([['1']]);
      await expect(store.listAggregatesByLabel('region', 'north')).resolves.toEqual([['3']]);

      await store.appendEvents(['1'], 1, [set({ labels: { region: '' } })]);
      await store.appendEvents(['2'], 1, [set({ labels: { region: '' } })]);
      await store.appendEvents(['4'], 1, [set({ labels: { region: '' } })]);
      await expect(store.listAggregatesByLabel('region', 'west')).resolves.toEqual([]);
      await expect(store.listAggregatesByLabel('region', '')).resolves.toEqual([]);
      await expect(store.listLabelValues('region')).resolves.toEqual(['north']);
      await expect(store.listLabelValues('nothing')).resolves.toEqual([]);
    });

    it('stores label names and values holding separators exactly', async () => {
      const store = await h.store<IndexEvents>({ indexer: payloadIndexer });
      const name = 'we:ird{label}\\%\'"';
      const value = 'val:ue{}\\%\x1f 🙂';
      await store.appendEvents(['w', 'x:y'], 0, [set({ status: 'st:at{us}', labels: { [name]: value, plain: 'a:b' } })]);
      await expect(store.listLabelValues(name)).resolves.toEqual([value]);
      await expect(store.listAggregatesByLabel(name, value)).resolves.toEqual([['w', 'x:y']]);
      await expect(store.listAggregatesByLabel('plain', 'a:b')).resolves.toEqual([['w', 'x:y']]);
      await expect(store.listAggregatesByLabel('plain', 'a')).resolves.toEqual([]);
      await expect(store.getAggregateStatus(['w', 'x:y'])).resolves.toBe('st:at{us}');
      await expect(store.listAggregatesByStatus('st:at{us}')).resolves.toHaveLength(1);
    });

    it('keeps statuses, label names and values distinct that collide once joined, matched as patterns, case-folded or normalized', async () => {
      const store = await h.store<IndexEvents>({ indexer: payloadIndexer });
      // Each value is an aggregate's ID, its status, a label name and that label's value.
      for (const [i, value] of TRICKY_VALUES.entries()) {
        await store.appendEvents([value], 0, [set({ status: value, labels: { [value]: value, shared: value } }, i)]);
      }
      // Name and value that join to the same text.
      await store.appendEvents(['pair', '1'], 0, [set({ labels: { 'x:y': 'z', 'x{y}': 'z' } })]);
      await store.appendEvents(['pair', '2'], 0, [set({ labels: { x: 'y:z', 'x{': 'y}:z' } })]);

      expect(await store.listLabelValues('shared')).toEqual([...TRICKY_VALUES].sort(compareCodeUnits));
      const all = TRICKY_VALUES.map((value) => [value]);
      expect(sortIds(await store.listAggregates())).toEqual(sortIds([...all, ['pair', '1'], ['pair', '2']]));
      for (const [i, value] of TRICKY_VALUES.entries()) {
        const what = JSON.stringify(value);
        expect(await store.getAggregateStatus([value]), what).toBe(value);
        expect(await store.listAggregatesByStatus(value), what).toEqual([{ id: [value], timestamp: new Date(T0 + i) }]);
        expect(await store.listAggregatesByLabel('shared', value), what).toEqual([[value]]);
        expect(await store.listAggregatesByLabel(value, value), what).toEqual([[value]]);
        expect(await store.listLabelValues(value), what).toEqual([value]);
        expect(await store.listAggregates([value]), what).toEqual([[value]]);
      }
      await expect(store.listAggregatesByLabel('x:y', 'z')).resolves.toEqual([['pair', '1']]);
      await expect(store.listAggregatesByLabel('x', 'y:z')).resolves.toEqual([['pair', '2']]);
      await expect(store.listAggregatesByLabel('x{', 'y}:z')).resolves.toEqual([['pair', '2']]);
      await expect(store.listAggregatesByLabel('x{y}', 'z')).resolves.toEqual([['pair', '1']]);
      await expect(store.listLabelValues('x')).resolves.toEqual(['y:z']);
      await expect(store.listLabelValues('x:y')).resolves.toEqual(['z']);
      await expect(store.listLabelValues('x{')).resolves.toEqual(['y}:z']);
      // Values that are not held, though a pattern, a fold or a normalization would match one.
      for (const absent of ['%', '_', '*', '?', 'CaSe', 'STRAßE', 'İ'.toLowerCase(), 'É', 'E\u0301', 'pad  ', 'like']) {
        await expect(store.listAggregatesByLabel('shared', absent), JSON.stringify(absent)).resolves.toEqual([]);
        await expect(store.listAggregatesByStatus(absent), JSON.stringify(absent)).resolves.toEqual([]);
      }
    });

    it('runs the indexer once per non-empty batch, never for an empty one', async () => {
      const calls: number[] = [];
      const store = await h.store<IndexEvents>({
        indexer: (events) => {
          calls.push(events.length);
          return [];
        },
      });
      await store.appendEvents(['i'], 0, []);
      await store.appendEvents(['i'], 0, [set({}), set({})]);
      await store.appendEvents(['i'], 2, [set({})]);
      expect(calls).toEqual([2, 1]);
    });

    it('leaves the index untouched when the append conflicts', async () => {
      const store = await h.store<IndexEvents>({ indexer: payloadIndexer });
      await store.appendEvents(['c'], 0, [set({ status: 'open', labels: { k: 'v1' } }, 1)]);
      await expect(store.appendEvents(['c'], 0, [set({ status: 'closed', labels: { k: 'v2' } }, 2)])).rejects.toThrow();
      await expect(store.getAggregateStatus(['c'])).resolves.toBe('open');
      await expect(store.listAggregatesByStatus('closed')).resolves.toEqual([]);
      await expect(store.listLabelValues('k')).resolves.toEqual(['v1']);
    });

    it('while appends race at one sequence, applies the winner’s index and never a loser’s', async () => {
      const stores = await h.stores<IndexEvents>(4, { indexer: payloadIndexer });
      const racers = 12;
      await stores[0]!.appendEvents(['race'], 0, [set({ status: 'start', labels: { who: 'start' } })]);
      const everWon = new Set<number>();
      let lastWinner = -1;
      let enteredAt = 0;
      for (let round = 1; round <= 4; round++) {
        const results = await Promise.allSettled(
          Array.from({ length: racers }, (_, racer) =>
            stores[racer % stores.length]!.appendEvents(['race'], round, [
              set({ status: `s${racer}`, labels: { who: `r${racer}`, [`only${racer}`]: 'x' } }, round),
            ]),
          ),
        );
        const won = results.flatMap((result, racer) => (result.status === 'fulfilled' ? [racer] : []));
        expect(won, `round ${round}`).toHaveLength(1);
        const winner = won[0]!;
        everWon.add(winner);
        // Re-asserting a status keeps the time it was entered.
        if (winner !== lastWinner) enteredAt = round;
        lastWinner = winner;
        for (const store of stores) {
          await expect(store.getAggregateStatus(['race']), `round ${round}`).resolves.toBe(`s${winner}`);
        }
        const reader = stores[round % stores.length]!;
        await expect(reader.listLabelValues('who')).resolves.toEqual([`r${winner}`]);
        await expect(reader.listAggregatesByLabel('who', `r${winner}`)).resolves.toEqual([['race']]);
        for (let racer = 0; racer < racers; racer++) {
          const what = `round ${round}, racer ${racer}`;
          await expect(reader.listAggregatesByStatus(`s${racer}`), what).resolves.toEqual(
            racer === winner ? [{ id: ['race'], timestamp: new Date(T0 + enteredAt) }] : [],
          );
          await expect(reader.listLabelValues(`only${racer}`), what).resolves.toEqual(everWon.has(racer) ? ['x'] : []);
        }
      }
    });

    it('answers empty without an indexer', async () => {
      const store = await h.store<IndexEvents>();
      await store.appendEvents(['n'], 0, [set({ status: 'open', labels: { k: 'v' } })]);
      await expect(store.getAggregateStatus(['n'])).resolves.toBe('');
      await expect(store.listAggregatesByStatus('open')).resolves.toEqual([]);
      await expect(store.listAggregatesByLabel('k', 'v')).resolves.toEqual([]);
      await expect(store.listLabelValues('k')).resolves.toEqual([]);
    });

    for (const trimEvents of [false, true]) {
      it(`keeps the index through snapshots ${trimEvents ? 'with' : 'without'} trimming`, async () => {
        const store = await h.store<IndexEvents>({ indexer: payloadIndexer, trimEvents });
        await store.appendEvents(['s'], 0, [set({ status: 'open', labels: { k: 'v' } }, 1)]);
        await store.appendEvents(['s'], 1, [set({ labels: { other: 'w' } }, 2)]);
        await store.putSnapshot(['s'], { snap: true }, 2);
        await expect(store.getEvents(['s'])).resolves.toHaveLength(trimEvents ? 0 : 2);
        await expect(store.getAggregateStatus(['s'])).resolves.toBe('open');
        await expect(store.listAggregatesByStatus('open')).resolves.toEqual([{ id: ['s'], timestamp: new Date(T0 + 1) }]);
        await expect(store.listAggregatesByLabel('k', 'v')).resolves.toEqual([['s']]);
        await store.appendEvents(['s'], 2, [set({ status: 'done', labels: { k: '' } }, 3)]);
        await expect(store.listAggregatesByStatus('done')).resolves.toEqual([{ id: ['s'], timestamp: new Date(T0 + 3) }]);
        await expect(store.listLabelValues('k')).resolves.toEqual([]);
        await expect(store.listLabelValues('other')).resolves.toEqual(['w']);
      });
    }
  });
}
