import { afterAll, describe, expect, it } from 'vitest';
import { VersionConflictError, type Index } from '@timebox/core';
import { createPostgresStore } from '../src/index.js';
import { adminSql, deletePrefix, randomPrefix, serverUrl } from './helpers.js';

type BatchEvents = { Opened: { tag: string }; Noted: { n: number }; Closed: Record<string, never> };

const indexer = (events: readonly { type: string; payload: unknown }[]): (Index | undefined)[] =>
  events.map((event): Index | undefined => {
    if (event.type === 'Opened') return { status: 'open', labels: { tag: (event.payload as { tag: string }).tag, kind: 'x' } };
    if (event.type === 'Closed') return { status: '', labels: { kind: '' } };
    return undefined;
  });

const admin = adminSql();
afterAll(() => admin.end());

describe('concurrent appends (batched on the append connections)', () => {
  it('give each append its own outcome: first appends, later ones, conflicts, statuses, labels and several events', async () => {
    const prefix = randomPrefix('batches');
    // The default pool (10) gives appends two connections: appends beyond two in flight travel together.
    const store = createPostgresStore<BatchEvents>({ indexer }, { url: serverUrl(), prefix });
    try {
      const count = 30;
      const existing = (i: number) => ['existing', String(i)];
      for (let i = 0; i < count; i++) await store.appendEvents(existing(i), 0, [{ type: 'Opened', data: { tag: `e${i}` } }]);

      const fresh = (i: number) => ['fresh', String(i)];
      const attempts = [
        // First appends of new aggregates, three events each, with a status and labels.
        ...Array.from({ length: count }, (_, i) =>
          store.appendEvents(fresh(i), 0, [
            { type: 'Opened', data: { tag: `f${i}` } },
            { type: 'Noted', data: { n: i } },
            { type: 'Noted', data: { n: i + 1 } },
          ]),
        ),
        // Later appends: even ones close (status cleared, a label removed), odd ones add a note.
        ...Array.from({ length: count }, (_, i) =>
          store.appendEvents(existing(i), 1, [i % 2 === 0 ? { type: 'Closed', data: {} } : { type: 'Noted', data: { n: i } }]),
        ),
        // Stale appends: each conflicts, and must change nothing.
        ...Array.from({ length: count }, (_, i) => store.appendEvents(['existing', String(i)], 0, [{ type: 'Noted', data: { n: -1 } }])),
      ];
      const results = await Promise.allSettled(attempts);

      const outcomes = results.map((result) => result.status);
      expect(outcomes.slice(0, 2 * count)).toEqual(Array.from({ length: 2 * count }, () => 'fulfilled'));
      // A stale append and the later append to the same aggregate race: exactly one of each pair wins.
      for (let i = 0; i < count; i++) {
        const later = results[count + i]!;
        const stale = results[2 * count + i]!;
        expect(later.status).toBe('fulfilled');
        expect(stale.status).toBe('rejected');
        expect((stale as PromiseRejectedResult).reason).toBeInstanceOf(VersionConflictError);
      }

      for (let i = 0; i < count; i++) {
        const events = await store.getEvents(fresh(i));
        expect(events.map((event) => [event.type, event.sequence])).toEqual([
          ['Opened', 0],
          ['Noted', 1],
          ['Noted', 2],
        ]);
        // Positions follow sequence order within an append.
        expect(events[1]!.position).toBeGreaterThan(events[0]!.position);
        expect(events[2]!.position).toBeGreaterThan(events[1]!.position);
        expect(await store.getAggregateStatus(fresh(i))).toBe('open');
        expect(await store.listAggregatesByLabel('tag', `f${i}`)).toEqual([fresh(i)]);

        const older = await store.getEvents(existing(i));
        expect(older.map((event) => event.type)).toEqual(['Opened', i % 2 === 0 ? 'Closed' : 'Noted']);
        expect(older[1]!.position).toBeGreaterThan(older[0]!.position);
        expect(await store.getAggregateStatus(existing(i))).toBe(i % 2 === 0 ? '' : 'open');
      }
      const kinds = await store.listAggregatesByLabel('kind', 'x');
      // Every fresh aggregate has kind x; of the existing ones, the closed (even) lost it.
      expect(kinds).toHaveLength(count + count / 2);
      expect(kinds).not.toContainEqual(existing(0));
      expect(kinds).toContainEqual(existing(1));
      // Every position is distinct.
      const all = await store.readAll({ limit: 10_000 });
      expect(new Set(all.events.map((event) => event.position)).size).toBe(all.events.length);
      expect(all.events).toHaveLength(count + 3 * count + count);
    } finally {
      await store.close();
      await deletePrefix(admin, prefix);
    }
  });
});
