import { describe, expect, it } from 'vitest';
import { VersionConflictError } from '../errors.js';
import { Event } from '../event.js';
import { expectGapFree, makeEvents, T0 } from './util.js';
import type { Harness } from './harness.js';

export function appendSuite(h: Harness): void {
  describe('append and load', () => {
    it('stores events and reads them back exactly', async () => {
      const store = await h.store();
      const payload = { text: 'héllo "world" \\ \u0000 😀', nested: { list: [1, 2.5, null, true], empty: {} } };
      await store.appendEvents(['order', '1'], 0, [
        { type: 'Created', data: payload, timestamp: new Date(T0 + 123) },
        { type: 'Noted', data: 'plain string' },
      ]);
      const events = await store.getEvents(['order', '1']);
      expect(events).toHaveLength(2);
      const [first, second] = events as [Event, Event];
      expect(first).toBeInstanceOf(Event);
      expect(first.type).toBe('Created');
      expect(first.aggregateId).toEqual(['order', '1']);
      expect(first.sequence).toBe(0);
      expect(first.timestamp.getTime()).toBe(T0 + 123);
      expect(first.payload).toEqual(payload);
      expect(JSON.parse(first.data)).toEqual(payload);
      expect(second.sequence).toBe(1);
      expect(second.payload).toBe('plain string');
    });

    it('an unknown aggregate has no events', async () => {
      const store = await h.store();
      await expect(store.getEvents(['nobody'])).resolves.toEqual([]);
      await expect(store.getEvents(['nobody'], 5)).resolves.toEqual([]);
    });

    it('continues sequences across appends and reads from a given sequence', async () => {
      const store = await h.store();
      await store.appendEvents(['a'], 0, makeEvents(3));
      await store.appendEvents(['a'], 3, makeEvents(4, 3));
      const all = await store.getEvents(['a']);
      expectGapFree(all);
      expect(all.map((event) => (event.payload as { n: number }).n)).toEqual([0, 1, 2, 3, 4, 5, 6]);
      const tail = await store.getEvents(['a'], 5);
      expect(tail.map((event) => event.sequence)).toEqual([5, 6]);
      await expect(store.getEvents(['a'], 7)).resolves.toEqual([]);
      await expect(store.getEvents(['a'], 100)).resolves.toEqual([]);
    });

    it('keeps a large batch whole and in order', async () => {
      const store = await h.store();
      await store.appendEvents(['big'], 0, makeEvents(1000));
      const events = await store.getEvents(['big']);
      expectGapFree(events);
      expect(events.map((event) => (event.payload as { n: number }).n)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    });

    it('keeps aggregates apart', async () => {
      const store = await h.store();
      await store.appendEvents(['x'], 0, makeEvents(2));
      await store.appendEvents(['y'], 0, makeEvents(1, 10));
      expect((await store.getEvents(['x'])).map((event) => (event.payload as { n: number }).n)).toEqual([0, 1]);
      expect((await store.getEvents(['y'])).map((event) => (event.payload as { n: number }).n)).toEqual([10]);
    });

    it('rejects a stale expected sequence with the events stored since', async () => {
      const store = await h.store();
      await store.appendEvents(['a'], 0, makeEvents(3));
      const error = await store.appendEvents(['a'], 1, makeEvents(1, 99)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(VersionConflictError);
      const conflict = error as VersionConflictError;
      expect(conflict.expectedSequence).toBe(1);
      expect(conflict.actualSequence).toBe(3);
      expect(conflict.aggregateId).toEqual(['a']);
      expect(conflict.newEvents.map((event) => event.sequence)).toEqual([1, 2]);
      expect(conflict.newEvents.map((event) => (event.payload as { n: number }).n)).toEqual([1, 2]);
      expect(conflict.newEvents[0]).toBeInstanceOf(Event);
      expect((await store.getEvents(['a'])).length).toBe(3);
    });

    it('rejects a caller ahead of the log with no new events', async () => {
      const store = await h.store();
      await store.appendEvents(['a'], 0, makeEvents(2));
      const error = (await store.appendEvents(['a'], 5, makeEvents(1)).catch((e: unknown) => e)) as VersionConflictError;
      expect(error).toBeInstanceOf(VersionConflictError);
      expect(error.actualSequence).toBe(2);
      expect(error.newEvents).toEqual([]);
      const unknown = (await store.appendEvents(['new'], 1, makeEvents(1)).catch((e: unknown) => e)) as VersionConflictError;
      expect(unknown).toBeInstanceOf(VersionConflictError);
      expect(unknown.actualSequence).toBe(0);
      expect(unknown.newEvents).toEqual([]);
      await expect(store.getEvents(['new'])).resolves.toEqual([]);
      await expect(store.listAggregates(['new'])).resolves.toEqual([]);
    });

    it('an empty batch at the right sequence succeeds and stores nothing', async () => {
      const store = await h.store();
      await expect(store.appendEvents(['e'], 0, [])).resolves.toEqual([]);
      await expect(store.getEvents(['e'])).resolves.toEqual([]);
      await expect(store.listAggregates()).resolves.toEqual([]);
      await store.appendEvents(['e'], 0, makeEvents(2));
      await expect(store.appendEvents(['e'], 2, [])).resolves.toEqual([]);
      await expect(store.getEvents(['e'])).resolves.toHaveLength(2);
    });

    it('an empty batch at a wrong sequence is a conflict', async () => {
      const store = await h.store();
      await store.appendEvents(['e'], 0, makeEvents(2));
      const error = (await store.appendEvents(['e'], 1, []).catch((e: unknown) => e)) as VersionConflictError;
      expect(error).toBeInstanceOf(VersionConflictError);
      expect(error.actualSequence).toBe(2);
      expect(error.newEvents.map((event) => event.sequence)).toEqual([1]);
      await expect(store.appendEvents(['none'], 3, [])).rejects.toBeInstanceOf(VersionConflictError);
    });

    it('timestamps keep millisecond precision and default to now', async () => {
      const store = await h.store();
      const before = Date.now();
      await store.appendEvents(['t'], 0, [
        { type: 'A', data: 1, timestamp: new Date(T0 + 999) },
        { type: 'B', data: 2 },
      ]);
      const after = Date.now();
      const [first, second] = (await store.getEvents(['t'])) as [Event, Event];
      expect(first.timestamp.getTime()).toBe(T0 + 999);
      expect(second.timestamp.getTime()).toBeGreaterThanOrEqual(before);
      expect(second.timestamp.getTime()).toBeLessThanOrEqual(after);
    });
  });

  describe('copy semantics', () => {
    it('never mutates the caller’s events or ID, and returns the store’s own copies', async () => {
      const store = await h.store();
      const id = ['copy', '1'];
      const input = [
        { type: 'A', data: { value: 1 } },
        { type: 'B', data: { value: 2 } },
      ];
      const snapshotOfInput = JSON.stringify(input);
      const stored = await store.appendEvents(id, 0, input);
      expect(JSON.stringify(input)).toBe(snapshotOfInput);
      expect(Object.keys(input[0]!)).toEqual(['type', 'data']);
      expect(stored.map((event) => event.sequence)).toEqual([0, 1]);
      expect(stored[0]).not.toBe(input[0]);
      expect(stored[0]!.aggregateId).toEqual(['copy', '1']);
      expect(stored[0]!.aggregateId).not.toBe(id);

      id[1] = 'changed';
      input[0]!.data.value = 42;
      const reloaded = await store.getEvents(['copy', '1']);
      expect(reloaded.map((event) => event.payload)).toEqual([{ value: 1 }, { value: 2 }]);
      expect(reloaded[0]!.aggregateId).toEqual(['copy', '1']);
      await expect(store.getEvents(['copy', 'changed'])).resolves.toEqual([]);
    });

    it('returns events that cannot be changed through the result', async () => {
      const store = await h.store();
      await store.appendEvents(['frozen'], 0, makeEvents(1));
      const [event] = await store.getEvents(['frozen']);
      expect(Object.isFrozen(event)).toBe(true);
      expect(() => {
        (event as { sequence: number }).sequence = 9;
      }).toThrow(TypeError);
      const payload = event!.payload as { n: number };
      payload.n = 77;
      const [again] = await store.getEvents(['frozen']);
      expect(again!.payload).toEqual({ n: 0 });
      expect(again!.sequence).toBe(0);
    });
  });
}
