import { describe, expect, it } from 'vitest';
import {
  EventsDroppedError,
  HubUnavailableError,
  InvalidArgumentError,
  StoreClosedError,
  SubscriberError,
  VersionConflictError,
} from '../errors.js';
import { makeDispatcher, makeHandler } from '../event-handlers.js';
import type { Event } from '../event.js';
import { createExecutor } from '../executor.js';
import type { SubscriptionError } from '../subscription.js';
import type { Harness } from './harness.js';
import { makeEvents, sleep } from './util.js';

/** Waits until `condition()` holds, failing with `what` after `timeoutMs`. */
async function until(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(5);
  }
}

/** Collects what a subscription receives. */
function recorder() {
  const events: Event[] = [];
  const errors: SubscriptionError[] = [];
  return {
    events,
    errors,
    handler: (event: Event) => {
      events.push(event);
    },
    onError: (error: SubscriptionError) => {
      errors.push(error);
    },
    of: (part: string) => events.filter((event) => event.aggregateId[1] === part),
  };
}

export function hubSuite(h: Harness): void {
  describe('event hub', () => {
    if (h.target.capabilities.hub !== true) {
      it('subscribe rejects with HubUnavailableError', async () => {
        const store = await h.store();
        await expect(store.subscribe(() => undefined)).rejects.toBeInstanceOf(HubUnavailableError);
      });
      return;
    }

    it('delivers events appended through another store, in sequence order per aggregate', async () => {
      const [reader, writer] = await h.stores(2);
      const got = recorder();
      await reader!.subscribe(got.handler, { onError: got.onError });
      const parts = ['a', 'b', 'c'];
      const next = new Map(parts.map((part) => [part, 0]));
      // Interleaved batches of 1–3 events on three aggregates, some appended concurrently.
      for (let round = 0; round < 10; round++) {
        await Promise.all(
          parts.map((part, i) => {
            const size = ((round + i) % 3) + 1;
            const from = next.get(part) as number;
            next.set(part, from + size);
            return writer!.appendEvents(['hub', part], from, makeEvents(size, from));
          }),
        );
      }
      const total = [...next.values()].reduce((sum, n) => sum + n, 0);
      await until(`${total} events arrived`, () => got.events.length >= total);
      await sleep(50);
      expect(got.events).toHaveLength(total);
      expect(got.errors).toEqual([]);
      for (const part of parts) {
        const events = got.of(part);
        expect(events.map((event) => event.sequence)).toEqual(Array.from({ length: next.get(part) as number }, (_, i) => i));
        expect(events.map((event) => event.payload)).toEqual(events.map((_, i) => ({ n: i })));
        expect(
          events.every((event) => event.type === 'Counted' && event.timestamp.getTime() === Date.UTC(2024, 0, 1, 12, 0, event.sequence)),
        ).toBe(true);
        expect(events[0]!.aggregateId).toEqual(['hub', part]);
      }
      // The events match what the store holds, field for field.
      const stored = await reader!.getEvents(['hub', 'a']);
      expect(got.of('a').map((event) => event.toJSON())).toEqual(stored.map((event) => event.toJSON()));
    });

    it('delivers an append of 5,000 events whole, in order, and the appends around it', async () => {
      const [reader, writer] = await h.stores(2);
      const got = recorder();
      await reader!.subscribe(got.handler, { onError: got.onError, bufferSize: 20_000 });
      await writer!.appendEvents(['hub', 'before'], 0, makeEvents(1));
      await writer!.appendEvents(['hub', 'big'], 0, makeEvents(5_000));
      await writer!.appendEvents(['hub', 'after'], 0, makeEvents(1));
      await until('5,002 events arrived', () => got.events.length >= 5_002);
      expect(got.errors).toEqual([]);
      const big = got.of('big');
      expect(big.map((event) => event.sequence)).toEqual(Array.from({ length: 5_000 }, (_, i) => i));
      expect(big.map((event) => event.payload)).toEqual(big.map((_, i) => ({ n: i })));
      expect(got.events[0]!.aggregateId).toEqual(['hub', 'before']);
      expect(got.events.at(-1)!.aggregateId).toEqual(['hub', 'after']);
    });

    it("delivers the store's own appends and the events an executor raised", async () => {
      const store = await h.store<{ Added: { by: number } }>();
      const got = recorder();
      await store.subscribe(got.handler);
      const executor = createExecutor<number, { Added: { by: number } }>(store, {
        initialState: () => 0,
        appliers: { Added: (total, data) => total + data.by },
      });
      await executor.exec(['hub', 'x'], (_, agg) => agg.raise('Added', { by: 2 }));
      await executor.exec(['hub', 'x'], (_, agg) => {
        agg.raise('Added', { by: 3 });
        agg.raise('Added', { by: 4 });
      });
      await until('3 events arrived', () => got.events.length >= 3);
      expect(got.events.map((event) => [event.sequence, event.payload])).toEqual([
        [0, { by: 2 }],
        [1, { by: 3 }],
        [2, { by: 4 }],
      ]);
    });

    it('filters by event type and by aggregate ID prefix', async () => {
      const [reader, writer] = await h.stores(2);
      const byType = recorder();
      const byPrefix = recorder();
      await reader!.subscribe(byType.handler, { types: ['Shipped', 'Paid'] });
      await reader!.subscribe(byPrefix.handler, { aggregatePrefix: ['order', '1'] });
      await writer!.appendEvents(['order', '1'], 0, [
        { type: 'Created', data: {} },
        { type: 'Paid', data: { n: 1 } },
      ]);
      await writer!.appendEvents(['order', '1', 'line'], 0, [{ type: 'Shipped', data: { n: 2 } }]);
      await writer!.appendEvents(['order', '10'], 0, [{ type: 'Shipped', data: { n: 3 } }]);
      await writer!.appendEvents(['order:1'], 0, [{ type: 'Created', data: {} }]);
      await writer!.appendEvents(['done'], 0, [{ type: 'Paid', data: { n: 4 } }]);
      await until('the marker arrived', () => byType.events.some((event) => event.aggregateId[0] === 'done'));
      await sleep(50);
      expect(byType.events.map((event) => event.payload)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
      expect(byPrefix.events.map((event) => [event.aggregateId, event.type])).toEqual([
        [['order', '1'], 'Created'],
        [['order', '1'], 'Paid'],
        [['order', '1', 'line'], 'Shipped'],
      ]);
    });

    it('a failed append delivers nothing', async () => {
      const [reader, writer] = await h.stores(2);
      const got = recorder();
      await reader!.subscribe(got.handler);
      await writer!.appendEvents(['hub', 'f'], 0, makeEvents(2));
      await expect(writer!.appendEvents(['hub', 'f'], 1, makeEvents(1, 100, 'Lost'))).rejects.toBeInstanceOf(VersionConflictError);
      await expect(writer!.appendEvents(['hub', 'f'], 5, makeEvents(1, 100, 'Lost'))).rejects.toBeInstanceOf(VersionConflictError);
      await expect(writer!.appendEvents(['hub', 'f'], 2, [{ type: '', data: {} }])).rejects.toThrow();
      await writer!.appendEvents(['hub', 'f'], 2, []);
      await writer!.appendEvents(['hub', 'marker'], 0, makeEvents(1, 0, 'Marker'));
      await until('the marker arrived', () => got.events.some((event) => event.type === 'Marker'));
      await sleep(50);
      expect(got.events.map((event) => [event.aggregateId[1], event.type, event.sequence])).toEqual([
        ['f', 'Counted', 0],
        ['f', 'Counted', 1],
        ['marker', 'Marker', 0],
      ]);
    });

    it('while appends race at one sequence, delivers the winners’ events and never a loser’s', async () => {
      const stores = await h.stores(5);
      const reader = stores[0]!;
      const writers = stores.slice(1);
      const got = recorder();
      await reader.subscribe(got.handler, { onError: got.onError });
      const rounds = 6;
      const racers = 12;
      const winners: number[] = [];
      for (let round = 0; round < rounds; round++) {
        const results = await Promise.allSettled(
          Array.from({ length: racers }, (_, racer) =>
            writers[racer % writers.length]!.appendEvents(['hub', 'race'], round * 2, [
              { type: 'Raced', data: { round, racer } },
              { type: 'Raced', data: { round, racer } },
            ]),
          ),
        );
        const won = results.flatMap((result, racer) => (result.status === 'fulfilled' ? [racer] : []));
        expect(won, `round ${round}`).toHaveLength(1);
        for (const result of results) if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(VersionConflictError);
        winners.push(won[0]!);
      }
      await writers[0]!.appendEvents(['hub', 'marker'], 0, makeEvents(1, 0, 'Marker'));
      await until('the marker arrived', () => got.events.some((event) => event.type === 'Marker'));
      await sleep(50);
      const stored = await reader.getEvents(['hub', 'race']);
      expect(stored.map((event) => event.payload)).toEqual(
        winners.flatMap((racer, round) => [
          { round, racer },
          { round, racer },
        ]),
      );
      expect(got.of('race').map((event) => event.toJSON())).toEqual(stored.map((event) => event.toJSON()));
      expect(got.errors).toEqual([]);
    });

    it('unsubscribing and aborting the signal stop delivery', async () => {
      const [reader, writer] = await h.stores(2);
      const stays = recorder();
      const leaves = recorder();
      const aborts = recorder();
      const controller = new AbortController();
      await reader!.subscribe(stays.handler);
      const unsubscribe = await reader!.subscribe(leaves.handler);
      await reader!.subscribe(aborts.handler, { signal: controller.signal });
      await writer!.appendEvents(['hub', 'u'], 0, makeEvents(1));
      await until('everyone has the first event', () => stays.events.length >= 1 && leaves.events.length >= 1 && aborts.events.length >= 1);
      await unsubscribe();
      await unsubscribe(); // idempotent
      controller.abort();
      await writer!.appendEvents(['hub', 'u'], 1, makeEvents(2, 1));
      await until('the remaining subscriber has all three', () => stays.events.length >= 3);
      await sleep(50);
      expect(leaves.events).toHaveLength(1);
      expect(aborts.events).toHaveLength(1);
    });

    it('a throwing handler is reported to onError and does not stop its own or other deliveries', async () => {
      const [reader, writer] = await h.stores(2);
      const errors: SubscriptionError[] = [];
      const seen: number[] = [];
      await reader!.subscribe(
        (event) => {
          seen.push(event.sequence);
          if (event.sequence === 1) throw new Error('projection bug');
        },
        { onError: (error) => errors.push(error) },
      );
      const other = recorder();
      await reader!.subscribe(other.handler);
      await writer!.appendEvents(['hub', 't'], 0, makeEvents(4));
      await until('both saw 4 events', () => seen.length >= 4 && other.events.length >= 4);
      expect(seen).toEqual([0, 1, 2, 3]);
      expect(errors).toHaveLength(1);
      const error = errors[0] as SubscriberError;
      expect(error).toBeInstanceOf(SubscriberError);
      expect(error.event.sequence).toBe(1);
      expect((error.cause as Error).message).toBe('projection bug');
      expect(error.message).toContain('projection bug');
    });

    it('a slow subscriber never holds up the writer, and receives everything in order afterwards', async () => {
      const [reader, writer] = await h.stores(2);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const seen: number[] = [];
      await reader!.subscribe(async (event) => {
        await gate;
        seen.push(event.sequence);
      });
      for (let i = 0; i < 50; i++) await writer!.appendEvents(['hub', 's'], i, makeEvents(1, i));
      expect(seen).toEqual([]);
      release();
      await until('all 50 handled', () => seen.length >= 50);
      expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i));
    });

    it('a subscriber that falls bufferSize behind has events dropped and is told how many', async () => {
      const [reader, writer] = await h.stores(2);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const seen: number[] = [];
      const errors: SubscriptionError[] = [];
      await reader!.subscribe(
        async (event) => {
          await gate;
          seen.push(event.sequence);
        },
        { bufferSize: 5, onError: (error) => errors.push(error) },
      );
      await writer!.appendEvents(['hub', 'o'], 0, makeEvents(30));
      await writer!.appendEvents(['hub', 'o-after'], 0, makeEvents(1));
      await sleep(200);
      release();
      await until('the drop was reported', () => errors.length > 0);
      await sleep(100);
      const dropped = errors.filter((error): error is EventsDroppedError => error instanceof EventsDroppedError);
      expect(dropped.length).toBeGreaterThan(0);
      const droppedCount = dropped.reduce((sum, error) => sum + error.count, 0);
      // One event in the handler, at most bufferSize queued, the rest dropped and counted.
      expect(seen.length + droppedCount).toBe(31);
      expect(seen.length).toBeLessThanOrEqual(6);
      expect(dropped[0]!.message).toContain('bufferSize');
    });

    it('handlers from makeHandler and makeDispatcher receive decoded payloads', async () => {
      type Events = { Opened: { owner: string }; Deposited: { amount: number }; Closed: Record<string, never> };
      const store = await h.store<Events>();
      const owners: string[] = [];
      const amounts: number[] = [];
      await store.subscribe(makeHandler('Opened', (payload: { owner: string }) => void owners.push(payload.owner)));
      await store.subscribe(makeDispatcher<Events>({ Deposited: (payload, event) => void amounts.push(payload.amount + event.sequence) }));
      await store.appendEvents(['acct', '1'], 0, [
        { type: 'Opened', data: { owner: 'ada' } },
        { type: 'Deposited', data: { amount: 10 } },
        { type: 'Closed', data: {} },
        { type: 'Deposited', data: { amount: 20 } },
      ]);
      await until('both handlers ran', () => owners.length >= 1 && amounts.length >= 2);
      expect(owners).toEqual(['ada']);
      expect(amounts).toEqual([11, 23]);
    });

    it('a store over another namespace sees nothing', async () => {
      const reader = await h.store();
      const stranger = await h.store();
      const got = recorder();
      await reader.subscribe(got.handler);
      await stranger.appendEvents(['hub', 'n'], 0, makeEvents(3));
      await reader.appendEvents(['hub', 'mine'], 0, makeEvents(1));
      await until('the own event arrived', () => got.events.length >= 1);
      await sleep(100);
      expect(got.events.map((event) => event.aggregateId)).toEqual([['hub', 'mine']]);
    });

    it('bad subscribe arguments reject with InvalidArgumentError and subscribe nothing', async () => {
      const store = await h.store();
      const got = recorder();
      const bad: [unknown, unknown][] = [
        [undefined, {}],
        ['handler', {}],
        [got.handler, { types: 'Counted' }],
        [got.handler, { types: [''] }],
        [got.handler, { types: [7] }],
        [got.handler, { aggregatePrefix: 'hub' }],
        [got.handler, { aggregatePrefix: [1] }],
        [got.handler, { bufferSize: 0 }],
        [got.handler, { bufferSize: 1.5 }],
        [got.handler, { signal: {} }],
        [got.handler, { onError: 'log' }],
      ];
      for (const [handler, options] of bad) {
        await expect(store.subscribe(handler as never, options as never)).rejects.toBeInstanceOf(Error);
        await expect(store.subscribe(handler as never, options as never)).rejects.toSatisfy(
          (error: unknown) => error instanceof InvalidArgumentError || (error as { code?: string }).code === 'INVALID_AGGREGATE_ID',
        );
      }
      await store.appendEvents(['hub', 'bad'], 0, makeEvents(2));
      await sleep(100);
      expect(got.events).toEqual([]);
    });

    it('an aborted signal subscribes nothing; a closed store refuses and stops its subscribers', async () => {
      const [reader, writer] = await h.stores(2);
      const got = recorder();
      const aborted = new AbortController();
      aborted.abort(new Error('not wanted'));
      await expect(reader!.subscribe(got.handler, { signal: aborted.signal })).rejects.toThrow('not wanted');
      const live = recorder();
      await reader!.subscribe(live.handler);
      await reader!.close();
      await expect(reader!.subscribe(got.handler)).rejects.toBeInstanceOf(StoreClosedError);
      await writer!.appendEvents(['hub', 'c'], 0, makeEvents(2));
      await sleep(150);
      expect(got.events).toEqual([]);
      expect(live.events).toEqual([]);
    });
  });
}
