/**
 * One life per ID on PostgreSQL: archiving keeps the head row as a tombstone (live = false, the
 * next life starting one past the archived life's next sequence), so the rule holds for every
 * process, and the append function's new-aggregate path (INSERT … ON CONFLICT) meets it too.
 */
import { InvalidSequenceError, type EventRecord } from '@timebox/core';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresBackend } from '../src/index.js';
import { aggregateKey } from '../src/text-codec.js';
import { adminSql, deletePrefix, randomPrefix, serverUrl } from './helpers.js';

const admin = adminSql();
const prefixes: string[] = [];
afterAll(async () => {
  for (const prefix of prefixes) await deletePrefix(admin, prefix);
  await admin.end();
});

function backendsOver(count: number): PostgresBackend[] {
  const prefix = randomPrefix('lives');
  prefixes.push(prefix);
  return Array.from({ length: count }, () => new PostgresBackend({ url: serverUrl(), prefix, maxConns: 6 }));
}

function events(from: number, count: number): EventRecord[] {
  return Array.from({ length: count }, (_, i) => ({ type: 'T', sequence: from + i, timestamp: i, data: `{"n":${from + i}}` }));
}

describe('one life per ID (postgres)', () => {
  it('an archived ID is a tombstone for every process: not listed, its next life one past the old one', async () => {
    const [first, second] = backendsOver(2) as [PostgresBackend, PostgresBackend];
    try {
      const id = ['order', '1'];
      await first.append({
        id,
        expectedSequence: 0,
        events: events(0, 3),
        index: { status: 'open', statusTime: 5, labels: { region: 'eu' } },
      });
      await first.archive(id);
      // A process that never saw this ID learns all of it from the stored tombstone.
      await expect(second.listAggregates([], { limit: 10_000 })).resolves.toEqual({ items: [] });
      await expect(second.listAggregates(['order'], { limit: 10_000 })).resolves.toEqual({ items: [] });
      await expect(second.getAggregateStatus(id)).resolves.toBe('');
      await expect(second.listAggregatesByStatus('open', { limit: 10_000 })).resolves.toEqual({ items: [] });
      await expect(second.listAggregatesByLabel('region', 'eu', { limit: 10_000 })).resolves.toEqual({ items: [] });
      await expect(second.loadSnapshot(id)).resolves.toEqual({ data: undefined, sequence: 4, events: [] });
      await expect(second.loadEvents(id, 0)).resolves.toEqual([]);
      await expect(second.append({ id, expectedSequence: 3, events: events(3, 1) })).resolves.toEqual({
        ok: false,
        actualSequence: 4,
        newEvents: [],
      });
      await expect(second.append({ id, expectedSequence: 4, events: [] })).resolves.toEqual({ ok: true, positions: [] });
      // Archiving it again archives nothing and leaves the next life where it was.
      const records = async () =>
        (
          await admin<
            { n: number }[]
          >`SELECT count(*)::int AS n FROM timebox_archive WHERE prefix = ${first.log.id.slice('postgres:'.length)}`
        )[0]!.n;
      expect(await records()).toBe(1);
      await second.archive(id);
      expect(await records()).toBe(1);
      await expect(first.loadSnapshot(id)).resolves.toMatchObject({ sequence: 4 });

      // The new life: listed again, its events from 4 on; an old life's snapshot sequence is ignored.
      const appended = await second.append({ id, expectedSequence: 4, events: events(4, 2) });
      expect(appended.ok).toBe(true);
      await expect(first.listAggregates([], { limit: 10_000 })).resolves.toEqual({ items: [id] });
      await first.saveSnapshot(id, '{"old":true}', 2, false);
      await first.saveSnapshot(id, '{"old":true}', 4, false);
      await expect(first.loadSnapshot(id)).resolves.toMatchObject({ data: undefined, sequence: 4 });
      await expect(first.saveSnapshot(id, '{}', 7, false)).rejects.toBeInstanceOf(InvalidSequenceError);
      await first.saveSnapshot(id, '{"new":true}', 5, true);
      const loaded = await second.loadSnapshot(id);
      expect(loaded.data).toBe('{"new":true}');
      expect(loaded.sequence).toBe(5);
      expect(loaded.events.map((event) => event.sequence)).toEqual([5]);
      // And the next archive starts the life after at 6 + 1.
      await second.archive(id);
      await expect(first.loadSnapshot(id)).resolves.toEqual({ data: undefined, sequence: 7, events: [] });
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });

  it('writers racing at sequence 0 on a tombstone all conflict; at the life start exactly one wins', async () => {
    const backends = backendsOver(4);
    try {
      const id = ['raced'];
      await backends[0]!.append({ id, expectedSequence: 0, events: events(0, 2) });
      await backends[0]!.archive(id);
      // Expected 0 takes the new-aggregate path (INSERT … ON CONFLICT DO NOTHING), which the tombstone must stop.
      const atZero = await Promise.all(
        Array.from({ length: 24 }, (_, i) => backends[i % backends.length]!.append({ id, expectedSequence: 0, events: events(0, 1) })),
      );
      for (const result of atZero) expect(result).toEqual({ ok: false, actualSequence: 3, newEvents: [] });
      const atStart = await Promise.all(
        Array.from({ length: 24 }, (_, i) => backends[i % backends.length]!.append({ id, expectedSequence: 3, events: events(3, 2) })),
      );
      expect(atStart.filter((result) => result.ok)).toHaveLength(1);
      for (const result of atStart.filter((r) => !r.ok)) expect(result).toMatchObject({ ok: false, actualSequence: 5 });
      const stored = await backends[1]!.loadEvents(id, 0);
      expect(stored.map((event) => event.sequence)).toEqual([3, 4]);
      const [row] = await admin<{ next: number; life: number; live: boolean }[]>`
        SELECT next_sequence::int AS next, life_start::int AS life, live FROM timebox_index
         WHERE prefix = ${backends[0]!.log.id.slice('postgres:'.length)} AND aggregate = ${aggregateKey(id)}`;
      expect(row).toEqual({ next: 5, life: 3, live: true });
    } finally {
      await Promise.all(backends.map((backend) => backend.close()));
    }
  });

  it('an ID that only ever had a snapshot is archived whole and starts its next life past it', async () => {
    const [backend] = backendsOver(1) as [PostgresBackend];
    try {
      const id = ['snapshot-only'];
      await backend.saveSnapshot(id, '{"s":0}', 0, false);
      await expect(backend.listAggregates([], { limit: 10_000 })).resolves.toEqual({ items: [id] });
      await backend.archive(id);
      let record: unknown;
      await backend.consumeArchive(async (r) => void (record = r), undefined);
      expect(record).toMatchObject({ aggregateId: id, snapshotData: '{"s":0}', snapshotSequence: 0, events: [] });
      await expect(backend.listAggregates([], { limit: 10_000 })).resolves.toEqual({ items: [] });
      await expect(backend.loadSnapshot(id)).resolves.toEqual({ data: undefined, sequence: 1, events: [] });
      await expect(backend.append({ id, expectedSequence: 0, events: events(0, 1) })).resolves.toMatchObject({
        ok: false,
        actualSequence: 1,
      });
      await expect(backend.append({ id, expectedSequence: 1, events: events(1, 1) })).resolves.toMatchObject({ ok: true });
    } finally {
      await backend.close();
    }
  });
});
