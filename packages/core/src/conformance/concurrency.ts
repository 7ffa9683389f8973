import { describe, expect, it } from 'vitest';
import { VersionConflictError } from '../errors.js';
import { createExecutor } from '../executor.js';
import type { Store } from '../store.js';
import type { Harness } from './harness.js';
import { expectGapFree, makeEvents } from './util.js';

type CounterEvents = { Incremented: { by: number; writer: number } };

function counterExecutor(store: Store<CounterEvents>) {
  return createExecutor<{ total: number }, CounterEvents>(store, {
    initialState: () => ({ total: 0 }),
    appliers: { Incremented: (state, data) => ({ total: state.total + data.by }) },
  });
}

export function concurrencySuite(h: Harness): void {
  const writers = h.target.writers ?? 50;

  describe('concurrency', () => {
    it(`${writers} concurrent appends at one expected sequence: exactly one wins`, async () => {
      const store = await h.store();
      await store.appendEvents(['race'], 0, makeEvents(2));
      const results = await Promise.allSettled(
        Array.from({ length: writers }, (_, writer) =>
          store.appendEvents(['race'], 2, [
            { type: 'Won', data: { writer } },
            { type: 'Won', data: { writer } },
          ]),
        ),
      );
      const winners = results.flatMap((result, writer) => (result.status === 'fulfilled' ? [writer] : []));
      expect(winners).toHaveLength(1);
      const events = await store.getEvents(['race']);
      expectGapFree(events);
      expect(events.slice(2).map((event) => event.payload)).toEqual([{ writer: winners[0] }, { writer: winners[0] }]);
      for (const result of results) {
        if (result.status === 'fulfilled') continue;
        const error = result.reason as VersionConflictError;
        expect(error).toBeInstanceOf(VersionConflictError);
        expect(error.actualSequence).toBe(4);
        expect(error.newEvents.map((event) => event.sequence)).toEqual([2, 3]);
        expect(error.newEvents.map((event) => event.payload)).toEqual([{ writer: winners[0] }, { writer: winners[0] }]);
      }
    });

    it(`${writers} concurrent first appends over separate connections: exactly one wins`, async () => {
      const stores = await h.stores(Math.min(writers, 8));
      const results = await Promise.allSettled(
        Array.from({ length: writers }, (_, writer) =>
          stores[writer % stores.length]!.appendEvents(['first'], 0, [{ type: 'Won', data: { writer } }]),
        ),
      );
      expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
      for (const result of results) {
        if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(VersionConflictError);
      }
      await expect(stores[0]!.getEvents(['first'])).resolves.toHaveLength(1);
    });

    it('executors on separate stores converge by retries to the exact total', async () => {
      const processes = 4;
      const perProcess = 25;
      const stores = await h.stores<CounterEvents>(processes, { maxRetries: 1000 });
      const executors = stores.map(counterExecutor);
      await Promise.all(
        executors.map(async (executor, writer) => {
          const running = [];
          for (let i = 0; i < perProcess; i++) {
            running.push(
              executor.exec(['counter'], (_state, aggregator) => {
                aggregator.raise('Incremented', { by: 1, writer });
              }),
            );
          }
          await Promise.all(running);
        }),
      );
      const events = await stores[0]!.getEvents(['counter']);
      expect(events).toHaveLength(processes * perProcess);
      expectGapFree(events);
      for (const executor of executors) expect(await executor.get(['counter'])).toEqual({ total: processes * perProcess });
      const perWriter = new Map<number, number>();
      for (const event of events) {
        const writer = (event.payload as { writer: number }).writer;
        perWriter.set(writer, (perWriter.get(writer) ?? 0) + 1);
      }
      expect([...perWriter.values()]).toEqual(Array(processes).fill(perProcess));
    });

    it('executors converge while others snapshot, trim and reload', async () => {
      const processes = 3;
      const perProcess = 20;
      const stores = await h.stores<CounterEvents>(processes, { maxRetries: 1000, trimEvents: true, snapshotRatio: 0 });
      const executors = stores.map(counterExecutor);
      await Promise.all(
        executors.map(async (executor, writer) => {
          for (let i = 0; i < perProcess; i++) {
            await executor.exec(['trimmed'], (_state, aggregator) => aggregator.raise('Incremented', { by: 1, writer }));
            if (i % 5 === writer) await executor.saveSnapshot(['trimmed']);
            // A cold reload goes through the snapshot plus the events that survived trimming.
            if (i % 7 === writer) executor.evict(['trimmed']);
          }
        }),
      );
      const total = processes * perProcess;
      for (const executor of executors) expect(await executor.get(['trimmed'])).toEqual({ total });
      const snapshot = await stores[0]!.getSnapshot<{ total: number }>(['trimmed']);
      expect(snapshot.value).toBeDefined();
      expectGapFree(snapshot.events, snapshot.nextSequence);
      expect(snapshot.nextSequence + snapshot.events.length).toBe(total);
      expect(snapshot.value!.total).toBe(snapshot.nextSequence);
    });

    it('concurrent appends to different aggregates all succeed', async () => {
      const store = await h.store();
      await Promise.all(Array.from({ length: writers }, (_, i) => store.appendEvents(['many', String(i)], 0, makeEvents(3))));
      for (let i = 0; i < writers; i++) expectGapFree(await store.getEvents(['many', String(i)]));
      await expect(store.listAggregates(['many'])).resolves.toHaveLength(writers);
    });
  });
}
