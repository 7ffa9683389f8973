import { afterAll, describe, expect, it } from 'vitest';
import type { AggregateId, Index } from '@timebox/core';
import { createPostgresStore } from '../src/index.js';
import { toStoredText } from '../src/text-codec.js';
import { adminSql, deletePrefix, randomPrefix, serverUrl, TIMEBOX_TABLES } from './helpers.js';

const admin = adminSql();
afterAll(() => admin.end());

const HOSTILE = [
  "'; DROP TABLE timebox_events; --",
  '$$; DELETE FROM timebox_index; $$',
  '$tag$ \\ \\\\ "q" \'\' ;; -- /* */',
  'a%b_c*?[x]',
  'nul\x00inside',
  '\x00',
  '\x01\x02 escapes of the NUL codec',
  "E'\\x00'",
];

type HostileEvents = { Set: Index; Note: { text: string } };
const indexer = (events: readonly { type: string; payload: unknown }[]): (Index | undefined)[] =>
  events.map((event) => (event.type === 'Set' ? (event.payload as Index) : undefined));

describe('hostile input', () => {
  it('stores prefixes, IDs, types, statuses, labels and payloads full of SQL syntax exactly, and injects nothing', async () => {
    const canaryPrefix = randomPrefix('canary');
    const canary = createPostgresStore({}, { url: serverUrl(), prefix: canaryPrefix, maxConns: 2 });
    const prefix = `${HOSTILE.join('|')}-${randomPrefix()}`;
    const store = createPostgresStore<HostileEvents>({ indexer }, { url: serverUrl(), prefix, maxConns: 2 });
    try {
      await canary.appendEvents(['canary'], 0, [{ type: 'Alive', data: {} }]);
      const ids: AggregateId[] = HOSTILE.map((text, i) => [text, String(i), text]);
      for (const [i, id] of ids.entries()) {
        const text = HOSTILE[i]!;
        await store.appendEvents(id, 0, [
          { type: 'Set', data: { status: text, labels: { [text]: text, plain: text } }, timestamp: new Date(1000 + i) },
          { type: `Note ${text}` as 'Note', data: { text }, timestamp: new Date(2000 + i) },
        ]);
        await store.putSnapshot(id, { text }, 1);
      }
      for (const [i, id] of ids.entries()) {
        const text = HOSTILE[i]!;
        const events = await store.getEvents(id);
        expect(events.map((event) => [event.type, event.payload, event.aggregateId])).toEqual([
          ['Set', { status: text, labels: { [text]: text, plain: text } }, id],
          [`Note ${text}`, { text }, id],
        ]);
        const snapshot = await store.getSnapshot(id);
        expect(snapshot.value).toEqual({ text });
        await expect(store.getAggregateStatus(id)).resolves.toBe(text);
        await expect(store.listAggregatesByStatus(text)).resolves.toEqual([{ id, timestamp: new Date(2000 + i) }]);
        await expect(store.listAggregatesByLabel(text, text)).resolves.toEqual([id]);
        await expect(store.listLabelValues(text)).resolves.toEqual([text]);
        await expect(store.listAggregates([text])).resolves.toEqual([id]);
        await expect(store.listAggregates([text, String(i)])).resolves.toEqual([id]);
      }
      expect([...(await store.listLabelValues('plain'))]).toEqual([...HOSTILE].sort());
      // Patterns are data: "a%b_c*?[x]" as a prefix matches itself only.
      await expect(store.listAggregates(['a'])).resolves.toEqual([]);

      // Archive records carry the hostile text back too.
      await store.archive(ids[0]!);
      let archived: unknown;
      await store.consumeArchive(
        (record) => {
          archived = { id: record.aggregateId, types: record.events.map((event) => event.type), snapshot: record.snapshotData };
        },
        { signal: AbortSignal.timeout(5000) },
      );
      expect(archived).toEqual({ id: ids[0], types: ['Set', `Note ${HOSTILE[0]}`], snapshot: JSON.stringify({ text: HOSTILE[0] }) });

      // Nothing was injected: the tables are intact and another store is untouched.
      // (Only Timebox's own tables: other code sharing the database may add tables of its own.)
      const own = [...TIMEBOX_TABLES];
      const tables = await admin<{ tablename: string }[]>`SELECT tablename FROM pg_tables WHERE tablename = ANY(${own}::text[])`;
      expect(tables.map((table) => table.tablename).sort()).toEqual(own);
      await expect(canary.getEvents(['canary'])).resolves.toHaveLength(1);
      await expect(canary.listAggregates()).resolves.toEqual([['canary']]);
    } finally {
      await store.close();
      await canary.close();
      await deletePrefix(admin, toStoredText(prefix));
      await deletePrefix(admin, canaryPrefix);
    }
  });

  it('reads the log filtered by hostile types and ID prefixes exactly, and keeps hostile projection records intact', async () => {
    const prefix = `${HOSTILE.join('|')}-${randomPrefix()}`;
    const store = createPostgresStore({}, { url: serverUrl(), prefix, maxConns: 2 });
    try {
      for (const [i, text] of HOSTILE.entries()) {
        await store.appendEvents([text, String(i)], 0, [
          { type: text, data: { i } },
          { type: `${text}-other`, data: { i } },
        ]);
      }
      for (const [i, text] of HOSTILE.entries()) {
        const byType = await store.readAll({ types: [text] });
        expect(byType.events.map((event) => [event.type, event.aggregateId])).toEqual([[text, [text, String(i)]]]);
        const byPrefix = await store.readAll({ aggregatePrefix: [text] });
        expect(byPrefix.events.map((event) => event.type)).toEqual([text, `${text}-other`]);
      }
      // Patterns and quotes are data: no type matches a LIKE pattern or a quoted list of others.
      await expect(store.readAll({ types: ['%', "' OR true --", 'a%b_c'] })).resolves.toMatchObject({ events: [] });
      const projection = store.project(HOSTILE[1]!, () => undefined);
      await projection.caughtUp();
      await projection.stop();
      const status = await store.projectionStatus(HOSTILE[1]!);
      expect(status.name).toBe(HOSTILE[1]);
      expect(status.lag).toBe(0);
      await store.resetProjection(HOSTILE[1]!);
      expect((await store.projectionStatus(HOSTILE[1]!)).checkpoint).toBeUndefined();
    } finally {
      await store.close();
      await deletePrefix(admin, toStoredText(prefix));
    }
  });

  it('keeps IDs apart that differ only by NUL and the codec’s escape characters', async () => {
    const prefix = randomPrefix('nul');
    const store = createPostgresStore({}, { url: serverUrl(), prefix, maxConns: 2 });
    try {
      const ids: AggregateId[] = [
        ['n', 'x'],
        ['n\x00', 'x'],
        ['n\x01', 'x'],
        ['n\x01\x01', 'x'],
        ['n\x01\x02', 'x'],
        ['n', '\x00x'],
        ['n\x00x'],
      ];
      for (const [i, id] of ids.entries()) await store.appendEvents(id, 0, [{ type: `T\x00${i}`, data: { i } }]);
      for (const [i, id] of ids.entries()) {
        const events = await store.getEvents(id);
        expect(events.map((event) => [event.type, event.payload])).toEqual([[`T\x00${i}`, { i }]]);
      }
      const sorted = (list: readonly AggregateId[]) => [...list].map((id) => JSON.stringify(id)).sort();
      expect(sorted(await store.listAggregates())).toEqual(sorted(ids));
      expect(sorted(await store.listAggregates(['n\x00']))).toEqual(sorted([['n\x00', 'x']]));
      expect(sorted(await store.listAggregates(['n']))).toEqual(
        sorted([
          ['n', 'x'],
          ['n', '\x00x'],
        ]),
      );
    } finally {
      await store.close();
      await deletePrefix(admin, prefix);
    }
  });

  it('sorts label values by UTF-16 code unit, although the C collation orders by code point', async () => {
    const prefix = randomPrefix('order');
    const store = createPostgresStore<HostileEvents>({ indexer }, { url: serverUrl(), prefix, maxConns: 2 });
    try {
      // Astral characters (surrogate pairs in UTF-16) sort below U+E000..U+FFFF in JavaScript,
      // but above them in UTF-8 byte order; NUL and U+0001 go through the storage codec.
      const values = ['\uFFFF', '🙂', '\uE000', 'z', 'Z', 'é', '\x00', '\x01', '\x02', 'a\x00b', 'a'];
      for (const [i, value] of values.entries()) {
        await store.appendEvents([String(i)], 0, [{ type: 'Set', data: { labels: { v: value } } }]);
      }
      const expected = [...values].sort();
      await expect(store.listLabelValues('v')).resolves.toEqual(expected);
      // What the server alone returns, to record the difference the backend corrects.
      const raw = await admin<{ value: string }[]>`
        SELECT DISTINCT value FROM timebox_labels WHERE prefix = ${prefix} AND label = 'v' ORDER BY value`;
      const serverOrder = raw.map((row) => row.value);
      expect(serverOrder.indexOf('🙂')).toBeGreaterThan(serverOrder.indexOf('\uFFFF'));
      expect(expected.indexOf('🙂')).toBeLessThan(expected.indexOf('\uE000'));
    } finally {
      await store.close();
      await deletePrefix(admin, prefix);
    }
  });

  it('keeps the words NULL and null as text, and a null payload as JSON', async () => {
    const prefix = randomPrefix('null');
    const store = createPostgresStore<HostileEvents>({ indexer }, { url: serverUrl(), prefix, maxConns: 2 });
    try {
      const id = ['NULL', 'null', ''];
      await store.appendEvents(id, 0, [
        { type: 'NULL' as 'Note', data: null as unknown as { text: string } },
        { type: 'Set', data: { status: 'NULL', labels: { NULL: 'null' } } },
      ]);
      const events = await store.getEvents(id);
      expect(events.map((event) => [event.type, event.data, event.aggregateId])).toEqual([
        ['NULL', 'null', id],
        ['Set', JSON.stringify({ status: 'NULL', labels: { NULL: 'null' } }), id],
      ]);
      await expect(store.getAggregateStatus(id)).resolves.toBe('NULL');
      await expect(store.listLabelValues('NULL')).resolves.toEqual(['null']);
      await expect(store.listAggregates(['NULL'])).resolves.toEqual([id]);
    } finally {
      await store.close();
      await deletePrefix(admin, prefix);
    }
  });

  it('round-trips millisecond timestamps exactly, from year 1 to the end of Date', async () => {
    const prefix = randomPrefix('time');
    const store = createPostgresStore({ trimEvents: false }, { url: serverUrl(), prefix, maxConns: 2 });
    try {
      const times = [0, 1, -1, 1_234_567_890_123, -62_135_596_800_000, 8.64e15, -8.64e15, Date.UTC(2024, 1, 29, 23, 59, 59, 999)];
      await store.appendEvents(
        ['t'],
        0,
        times.map((time, i) => ({ type: 'T', data: { i }, timestamp: new Date(time) })),
      );
      expect((await store.getEvents(['t'])).map((event) => event.timestamp.getTime())).toEqual(times);
      expect((await store.getSnapshot(['t'])).events.map((event) => event.timestamp.getTime())).toEqual(times);
      const conflict = (await store.appendEvents(['t'], 0, []).catch((e: unknown) => e)) as { newEvents: { timestamp: Date }[] };
      expect(conflict.newEvents.map((event) => event.timestamp.getTime())).toEqual(times);
    } finally {
      await store.close();
      await deletePrefix(admin, prefix);
    }
  });
});
