import { describe, expect, it } from 'vitest';
import { InvalidPayloadError, InvalidSequenceError } from '../errors.js';
import type { Harness } from './harness.js';
import { expectGapFree, makeEvents } from './util.js';

export function snapshotSuite(h: Harness): void {
  describe('snapshots', () => {
    it('has no snapshot for an unknown aggregate', async () => {
      const store = await h.store();
      const snapshot = await store.getSnapshot(['none']);
      expect(snapshot).toEqual({ value: undefined, nextSequence: 0, events: [], snapshotBytes: 0, eventBytes: 0 });
    });

    it('without a snapshot returns every event and their sizes', async () => {
      const store = await h.store();
      await store.appendEvents(['a'], 0, makeEvents(3));
      const snapshot = await store.getSnapshot(['a']);
      expect(snapshot.value).toBeUndefined();
      expect(snapshot.nextSequence).toBe(0);
      expectGapFree(snapshot.events);
      expect(snapshot.eventBytes).toBe(snapshot.events.reduce((sum, event) => sum + Buffer.byteLength(event.data), 0));
    });

    it('stores a snapshot and returns it with the trailing events', async () => {
      const store = await h.store();
      await store.appendEvents(['a'], 0, makeEvents(5));
      const value = { total: 3, name: 'naïve ✓', list: [1, 2, 3] };
      await store.putSnapshot(['a'], value, 3);
      const snapshot = await store.getSnapshot<typeof value>(['a']);
      expect(snapshot.value).toEqual(value);
      expect(snapshot.nextSequence).toBe(3);
      expect(snapshot.events.map((event) => event.sequence)).toEqual([3, 4]);
      expect(snapshot.snapshotBytes).toBe(Buffer.byteLength(JSON.stringify(value)));
      expect(snapshot.eventBytes).toBe(snapshot.events.reduce((sum, event) => sum + Buffer.byteLength(event.data), 0));
      await expect(store.getEvents(['a'])).resolves.toHaveLength(5);
    });

    it('ignores an older or equal snapshot without error', async () => {
      const store = await h.store();
      await store.appendEvents(['a'], 0, makeEvents(5));
      await store.putSnapshot(['a'], { v: 'four' }, 4);
      await expect(store.putSnapshot(['a'], { v: 'two' }, 2)).resolves.toBeUndefined();
      await expect(store.putSnapshot(['a'], { v: 'four again' }, 4)).resolves.toBeUndefined();
      const snapshot = await store.getSnapshot(['a']);
      expect(snapshot.value).toEqual({ v: 'four' });
      expect(snapshot.nextSequence).toBe(4);
      await store.putSnapshot(['a'], { v: 'five' }, 5);
      expect((await store.getSnapshot(['a'])).value).toEqual({ v: 'five' });
    });

    it('rejects a snapshot beyond the end of the log and stores nothing', async () => {
      const store = await h.store();
      await store.appendEvents(['a'], 0, makeEvents(2));
      await expect(store.putSnapshot(['a'], { v: 1 }, 3)).rejects.toBeInstanceOf(InvalidSequenceError);
      await expect(store.putSnapshot(['b'], { v: 1 }, 1)).rejects.toBeInstanceOf(InvalidSequenceError);
      expect((await store.getSnapshot(['a'])).value).toBeUndefined();
      await expect(store.listAggregates()).resolves.toEqual([['a']]);
    });

    it('rejects a value JSON cannot carry and stores nothing', async () => {
      const store = await h.store();
      await store.appendEvents(['a'], 0, makeEvents(2));
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      for (const bad of [cyclic, { n: 10n }, () => 1, undefined, { f: Symbol('s') }]) {
        await expect(store.putSnapshot(['a'], bad, 2)).rejects.toBeInstanceOf(InvalidPayloadError);
      }
      expect((await store.getSnapshot(['a'])).value).toBeUndefined();
    });

    it('without trimEvents keeps the events a snapshot covers', async () => {
      const store = await h.store({ trimEvents: false });
      await store.appendEvents(['a'], 0, makeEvents(4));
      await store.putSnapshot(['a'], { n: 3 }, 3);
      expectGapFree(await store.getEvents(['a']));
      await expect(store.getEvents(['a'])).resolves.toHaveLength(4);
    });

    it('with trimEvents deletes covered events and never renumbers', async () => {
      const store = await h.store({ trimEvents: true });
      await store.appendEvents(['a'], 0, makeEvents(5));
      await store.putSnapshot(['a'], { n: 3 }, 3);
      const remaining = await store.getEvents(['a']);
      expect(remaining.map((event) => event.sequence)).toEqual([3, 4]);
      expect((await store.getEvents(['a'], 1)).map((event) => event.sequence)).toEqual([3, 4]);
      const snapshot = await store.getSnapshot(['a']);
      expect(snapshot.nextSequence).toBe(3);
      expect(snapshot.events.map((event) => event.sequence)).toEqual([3, 4]);

      await expect(store.appendEvents(['a'], 3, makeEvents(1))).rejects.toThrow();
      await store.appendEvents(['a'], 5, makeEvents(2, 5));
      expect((await store.getEvents(['a'])).map((event) => event.sequence)).toEqual([3, 4, 5, 6]);

      await store.putSnapshot(['a'], { n: 7 }, 7);
      await expect(store.getEvents(['a'])).resolves.toEqual([]);
      await store.appendEvents(['a'], 7, makeEvents(1, 7));
      expect((await store.getEvents(['a'])).map((event) => event.sequence)).toEqual([7]);
    });

    it('with trimEvents reports the still-stored events in a conflict', async () => {
      const store = await h.store({ trimEvents: true });
      await store.appendEvents(['a'], 0, makeEvents(4));
      await store.putSnapshot(['a'], { n: 2 }, 2);
      const error = (await store.appendEvents(['a'], 0, makeEvents(1)).catch((e: unknown) => e)) as {
        actualSequence: number;
        newEvents: { sequence: number }[];
      };
      expect(error.actualSequence).toBe(4);
      expect(error.newEvents.map((event) => event.sequence)).toEqual([2, 3]);
    });

    it('accepts a snapshot at the very end of the log and of an empty aggregate', async () => {
      const store = await h.store();
      await store.putSnapshot(['empty'], { initial: true }, 0);
      expect((await store.getSnapshot(['empty'])).value).toEqual({ initial: true });
      await store.appendEvents(['full'], 0, makeEvents(3));
      await store.putSnapshot(['full'], { n: 3 }, 3);
      const snapshot = await store.getSnapshot(['full']);
      expect(snapshot.nextSequence).toBe(3);
      expect(snapshot.events).toEqual([]);
    });
  });
}
