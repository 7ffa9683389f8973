import { describe, expect, it } from 'vitest';
import { VersionConflictError } from '../errors.js';
import type { AggregateId } from '../id.js';
import type { Index } from '../indexer.js';
import { compareCodeUnits } from '../text.js';
import type { Harness } from './harness.js';
import { expectGapFree, makeEvents, payloadIndexer, sortIds, T0 } from './util.js';

/** More events than any page a backend might read its log in (1,000 is a common size), not a multiple of one. */
const LOG_EVENTS = 3_210;
/** More aggregates than any page a backend might list in (SCAN counts, LIMITs of a few hundred). */
const AGGREGATES = 620;

/** Runs `work` for 0 … count-1, `width` at a time. */
async function inWaves(count: number, width: number, work: (i: number) => Promise<unknown>): Promise<void> {
  for (let start = 0; start < count; start += width) {
    await Promise.all(Array.from({ length: Math.min(width, count - start) }, (_, k) => work(start + k)));
  }
}

export function volumeSuite(h: Harness): void {
  describe('results larger than a backend’s internal pages', () => {
    it(`reads an aggregate of ${LOG_EVENTS} events whole, from the middle and behind a snapshot`, async () => {
      const namespace = await h.namespace();
      const store = await h.store({}, namespace);
      const id = ['long', 'log'];
      for (let start = 0; start < LOG_EVENTS; start += 500) {
        await store.appendEvents(id, start, makeEvents(Math.min(500, LOG_EVENTS - start), start));
      }
      const whole = await store.getEvents(id);
      expect(whole).toHaveLength(LOG_EVENTS);
      expectGapFree(whole);
      expect(whole.every((event, i) => (event.payload as { n: number }).n === i)).toBe(true);
      const middle = await store.getEvents(id, 1_234);
      expect(middle).toHaveLength(LOG_EVENTS - 1_234);
      expectGapFree(middle, 1_234);
      expect((await store.getEvents(id, LOG_EVENTS - 1)).map((event) => event.sequence)).toEqual([LOG_EVENTS - 1]);
      expect(await store.getEvents(id, LOG_EVENTS)).toEqual([]);

      const conflict = await store.appendEvents(id, 987, makeEvents(1)).catch((e: unknown) => e);
      expect(conflict).toBeInstanceOf(VersionConflictError);
      expect((conflict as VersionConflictError).actualSequence).toBe(LOG_EVENTS);
      expectGapFree((conflict as VersionConflictError).newEvents, 987);
      expect((conflict as VersionConflictError).newEvents).toHaveLength(LOG_EVENTS - 987);

      let snapshot = await store.getSnapshot(id);
      expect(snapshot.value).toBeUndefined();
      expect(snapshot.events).toHaveLength(LOG_EVENTS);
      expectGapFree(snapshot.events);
      await store.putSnapshot(id, { upTo: 1_001 }, 1_001);
      snapshot = await store.getSnapshot(id);
      expect(snapshot.nextSequence).toBe(1_001);
      expect(snapshot.events).toHaveLength(LOG_EVENTS - 1_001);
      expectGapFree(snapshot.events, 1_001);

      // Trimmed by another store over the same data: what is left is read whole, from the snapshot on.
      const trimming = await h.store({ trimEvents: true }, namespace);
      await trimming.putSnapshot(id, { upTo: 1_002 }, 1_002);
      const left = await trimming.getEvents(id);
      expect(left).toHaveLength(LOG_EVENTS - 1_002);
      expectGapFree(left, 1_002);
    });

    it(`lists ${AGGREGATES} aggregates whole by prefix, status, label and label values`, async () => {
      const store = await h.store<{ Set: Index }>({ indexer: payloadIndexer });
      const ids: AggregateId[] = Array.from({ length: AGGREGATES }, (_, i) => ['bulk', String(i)]);
      await inWaves(AGGREGATES, 40, (i) =>
        store.appendEvents(ids[i]!, 0, [
          { type: 'Set', data: { status: 'open', labels: { bucket: 'all', value: `v${i}` } }, timestamp: new Date(T0 + i * 1000) },
        ]),
      );
      await store.appendEvents(['bulky'], 0, [{ type: 'Set', data: { status: 'other', labels: { bucket: 'none' } } }]);

      expect(sortIds(await store.listAggregates(['bulk']))).toEqual(sortIds(ids));
      expect(sortIds(await store.listAggregates())).toEqual(sortIds([...ids, ['bulky']]));
      const open = await store.listAggregatesByStatus('open');
      expect(open.map((entry) => entry.id)).toEqual(ids);
      expect(open.map((entry) => entry.timestamp.getTime())).toEqual(ids.map((_, i) => T0 + i * 1000));
      expect(sortIds(await store.listAggregatesByLabel('bucket', 'all'))).toEqual(sortIds(ids));
      expect(await store.listLabelValues('value')).toEqual(ids.map((_, i) => `v${i}`).sort(compareCodeUnits));
      expect(await store.listLabelValues('bucket')).toEqual(['all', 'none']);
    });
  });
}
