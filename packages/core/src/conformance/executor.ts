import { describe, expect, it } from 'vitest';
import { MaxRetriesExceededError } from '../errors.js';
import { createExecutor } from '../executor.js';
import type { Store } from '../store.js';
import type { Harness } from './harness.js';
import { expectGapFree } from './util.js';

type CartEvents = { Added: { sku: string; qty: number }; Removed: { sku: string }; Ignored: { note: string } };
type Cart = { items: Record<string, number>; version: number };

function cartExecutor(store: Store<CartEvents>) {
  return createExecutor<Cart, CartEvents>(store, {
    initialState: () => ({ items: {}, version: 0 }),
    appliers: {
      Added: (state, data) => ({
        items: { ...state.items, [data.sku]: (state.items[data.sku] ?? 0) + data.qty },
        version: state.version + 1,
      }),
      Removed: (state, data) => {
        const items = { ...state.items };
        delete items[data.sku];
        return { items, version: state.version + 1 };
      },
    },
  });
}

export function executorSuite(h: Harness): void {
  describe('executor', () => {
    it('runs a command, stores its events and resolves with the final state', async () => {
      const store = await h.store<CartEvents>();
      const executor = cartExecutor(store);
      const state = await executor.exec(['cart', '1'], (current, aggregator) => {
        expect(current).toEqual({ items: {}, version: 0 });
        aggregator.raise('Added', { sku: 'a', qty: 2 });
        expect(aggregator.state.items).toEqual({ a: 2 });
        aggregator.raise('Added', { sku: 'b', qty: 1 });
        aggregator.raise('Ignored', { note: 'stored, not applied' });
      });
      expect(state).toEqual({ items: { a: 2, b: 1 }, version: 2 });
      const events = await store.getEvents(['cart', '1']);
      expect(events.map((event) => event.type)).toEqual(['Added', 'Added', 'Ignored']);
      expectGapFree(events);
      const cold = cartExecutor(store);
      await expect(cold.get(['cart', '1'])).resolves.toEqual(state);
    });

    it('stores nothing when the command throws', async () => {
      const store = await h.store<CartEvents>();
      const executor = cartExecutor(store);
      await executor.exec(['cart'], (_state, aggregator) => aggregator.raise('Added', { sku: 'a', qty: 1 }));
      const failure = new Error('out of stock');
      await expect(
        executor.exec(['cart'], (_state, aggregator) => {
          aggregator.raise('Added', { sku: 'b', qty: 1 });
          throw failure;
        }),
      ).rejects.toBe(failure);
      await expect(store.getEvents(['cart'])).resolves.toHaveLength(1);
      await expect(executor.get(['cart'])).resolves.toEqual({ items: { a: 1 }, version: 1 });
    });

    it('catches up with another store’s writes by retrying', async () => {
      const [first, second] = await h.stores<CartEvents>(2);
      const mine = cartExecutor(first!);
      const theirs = cartExecutor(second!);
      await mine.exec(['shared'], (_s, aggregator) => aggregator.raise('Added', { sku: 'a', qty: 1 }));
      await theirs.exec(['shared'], (_s, aggregator) => aggregator.raise('Added', { sku: 'b', qty: 1 }));
      let runs = 0;
      const state = await mine.exec(['shared'], (_s, aggregator) => {
        runs++;
        aggregator.raise('Added', { sku: 'c', qty: 1 });
      });
      expect(runs).toBe(2);
      expect(state.items).toEqual({ a: 1, b: 1, c: 1 });
      expectGapFree(await first!.getEvents(['shared']));
    });

    it('decides on the current state when a command throws or raises nothing', async () => {
      const [first, second] = await h.stores<CartEvents>(2);
      const mine = cartExecutor(first!);
      const theirs = cartExecutor(second!);
      await mine.exec(['fresh'], (_s, aggregator) => aggregator.raise('Added', { sku: 'a', qty: 1 }));
      // Another process adds an item; `mine` still caches the cart without it.
      await theirs.exec(['fresh'], (_s, aggregator) => aggregator.raise('Added', { sku: 'b', qty: 1 }));
      const seen: number[] = [];
      const state = await mine.exec(['fresh'], (current, aggregator) => {
        seen.push(current.version);
        if (current.items.b === undefined) throw new Error('item b is missing');
        aggregator.raise('Removed', { sku: 'b' });
      });
      expect(seen).toEqual([1, 2]);
      expect(state.items).toEqual({ a: 1 });

      await theirs.exec(['fresh'], (_s, aggregator) => aggregator.raise('Added', { sku: 'c', qty: 1 }));
      const readOnly = await mine.exec(['fresh'], () => undefined);
      expect(readOnly.items).toEqual({ a: 1, c: 1 });
      await expect(
        mine.exec(['fresh'], () => {
          throw new Error('rejected on the current state');
        }),
      ).rejects.toThrow('rejected on the current state');
      expect(await first!.getEvents(['fresh'])).toHaveLength(4);
    });

    it('gives up with MaxRetriesExceededError when another writer always wins', async () => {
      const [first, second] = await h.stores<CartEvents>(2, { maxRetries: 2 });
      const executor = cartExecutor(first!);
      await executor.exec(['hot'], (_s, aggregator) => aggregator.raise('Added', { sku: 'a', qty: 1 }));
      let runs = 0;
      const error = await executor
        .exec(['hot'], async (_s, aggregator) => {
          runs++;
          const events = await second!.getEvents(['hot']);
          await second!.appendEvents(['hot'], events.length, [{ type: 'Added', data: { sku: 'rival', qty: 1 } }]);
          aggregator.raise('Added', { sku: 'mine', qty: 1 });
        })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MaxRetriesExceededError);
      expect((error as MaxRetriesExceededError).retries).toBe(2);
      expect(runs).toBe(3);
      const events = await first!.getEvents(['hot']);
      expect(events.filter((event) => (event.payload as { sku: string }).sku === 'mine')).toHaveLength(0);
      expectGapFree(events);
    });

    it('saves snapshots explicitly and opportunistically, and loads from them', async () => {
      const store = await h.store<CartEvents>({ trimEvents: true, snapshotRatio: 0 });
      const executor = cartExecutor(store);
      for (let i = 0; i < 5; i++) await executor.exec(['snap'], (_s, aggregator) => aggregator.raise('Added', { sku: `s${i}`, qty: 1 }));
      await executor.saveSnapshot(['snap']);
      const snapshot = await store.getSnapshot<Cart>(['snap']);
      expect(snapshot.nextSequence).toBe(5);
      expect(snapshot.value?.version).toBe(5);
      await expect(store.getEvents(['snap'])).resolves.toEqual([]);

      await executor.exec(['snap'], (_s, aggregator) => aggregator.raise('Added', { sku: 'late', qty: 1 }));
      const cold = cartExecutor(store);
      const state = await cold.get(['snap']);
      expect(state.version).toBe(6);
      expect(Object.keys(state.items)).toHaveLength(6);
      // Loading found trailing events outgrowing the ratio, so the cold executor refreshed the snapshot.
      const refreshed = await store.getSnapshot<Cart>(['snap']);
      expect(refreshed.nextSequence).toBe(6);
      expect(refreshed.value?.version).toBe(6);
      const next = await cold.exec(['snap'], (_s, aggregator) => aggregator.raise('Removed', { sku: 'late' }));
      expect(next.version).toBe(7);
      expect((await store.getEvents(['snap'])).map((event) => event.sequence)).toEqual([6]);
    });
  });
}
