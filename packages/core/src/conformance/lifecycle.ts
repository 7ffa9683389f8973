import { describe, expect, it } from 'vitest';
import { StoreClosedError } from '../errors.js';
import type { Harness } from './harness.js';
import { makeEvents } from './util.js';

export function lifecycleSuite(h: Harness): void {
  describe('lifecycle', () => {
    it('ready() resolves and the store serves requests', async () => {
      const store = await h.store();
      await expect(store.ready()).resolves.toBeUndefined();
      await expect(store.getEvents(['fresh'])).resolves.toEqual([]);
    });

    it('close() is idempotent', async () => {
      const store = await h.store();
      await store.close();
      await expect(store.close()).resolves.toBeUndefined();
      expect(store.closed).toBe(true);
    });

    it('every operation after close() rejects with StoreClosedError', async () => {
      const store = await h.store();
      await store.appendEvents(['a'], 0, makeEvents(1));
      await store.close();
      const calls: [string, () => Promise<unknown>][] = [
        ['ready', () => store.ready()],
        ['appendEvents', () => store.appendEvents(['a'], 1, makeEvents(1, 1))],
        ['getEvents', () => store.getEvents(['a'])],
        ['getSnapshot', () => store.getSnapshot(['a'])],
        ['putSnapshot', () => store.putSnapshot(['a'], {}, 1)],
        ['listAggregates', () => store.listAggregates()],
        ['getAggregateStatus', () => store.getAggregateStatus(['a'])],
        ['listAggregatesByStatus', () => store.listAggregatesByStatus('open')],
        ['listAggregatesByLabel', () => store.listAggregatesByLabel('l', 'v')],
        ['listLabelValues', () => store.listLabelValues('l')],
        ['archive', () => store.archive(['a'])],
        ['consumeArchive', () => store.consumeArchive(async () => undefined)],
      ];
      for (const [name, call] of calls) {
        await expect(call(), name).rejects.toBeInstanceOf(StoreClosedError);
      }
    });

    it('closing one store leaves other stores over the same namespace working', async () => {
      const [first, second] = await h.stores(2);
      await first!.appendEvents(['shared'], 0, makeEvents(1));
      await first!.close();
      await expect(second!.getEvents(['shared'])).resolves.toHaveLength(1);
    });
  });
}
