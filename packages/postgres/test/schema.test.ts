import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import type { ArchiveRecordData } from '@timebox/core';
import { PostgresBackend, SCHEMA_VERSION, SchemaVersionError } from '../src/index.js';
import { ensureSchema } from '../src/schema.js';
import { adminSql, serverUrl, TIMEBOX_TABLES } from './helpers.js';
import { startThrowawayCluster } from './server.js';

const admin = adminSql();
afterAll(() => admin.end());

/** A new, empty database on the test server, dropped after `use`. */
async function withFreshDatabase(use: (url: string) => Promise<void>): Promise<void> {
  const name = `timebox_schema_${randomUUID().replace(/-/g, '')}`;
  await admin`CREATE DATABASE ${admin(name)}`;
  try {
    const url = new URL(serverUrl());
    url.pathname = `/${name}`;
    await use(url.toString());
  } finally {
    await admin`DROP DATABASE ${admin(name)} WITH (FORCE)`;
  }
}

describe('schema', () => {
  it('is created once when many processes open a fresh database at the same time', async () => {
    await withFreshDatabase(async (url) => {
      const backends = Array.from({ length: 8 }, (_, i) => new PostgresBackend({ url, prefix: `p${i}`, maxConns: 1 }));
      try {
        await Promise.all(backends.map((backend) => backend.ready()));
        const check = postgres(url, { max: 1 });
        try {
          const tables = await check<{ name: string }[]>`
            SELECT table_name AS name FROM information_schema.tables WHERE table_name LIKE 'timebox%' ORDER BY 1`;
          expect(tables.map((t) => t.name)).toEqual(TIMEBOX_TABLES);
          const versions = await check<{ version: number }[]>`SELECT version FROM timebox_schema_version`;
          expect(versions).toEqual([{ version: SCHEMA_VERSION }]);
          // Every opened backend works over the one schema.
          await Promise.all(
            backends.map((backend) =>
              backend.append({ id: ['a'], expectedSequence: 0, events: [{ type: 'T', sequence: 0, timestamp: 1, data: '{}' }] }),
            ),
          );
          const rows = await check<{ n: number }[]>`SELECT count(*)::int AS n FROM timebox_events`;
          expect(rows[0]!.n).toBe(8);
        } finally {
          await check.end();
        }
      } finally {
        await Promise.all(backends.map((backend) => backend.close()));
      }
    });
  });

  it('opens an existing schema again without changing it', async () => {
    await withFreshDatabase(async (url) => {
      const first = new PostgresBackend({ url, prefix: 'p', maxConns: 1 });
      await first.ready();
      await first.append({ id: ['kept'], expectedSequence: 0, events: [{ type: 'T', sequence: 0, timestamp: 5, data: '1' }] });
      await first.close();
      const second = new PostgresBackend({ url, prefix: 'p', maxConns: 1 });
      await second.ready();
      await expect(second.loadEvents(['kept'], 0)).resolves.toEqual([{ type: 'T', sequence: 0, timestamp: 5, data: '1', position: 1 }]);
      await second.close();
    });
  });

  it('migrates a version-1 database to the current version, keeping its data, and appends then reach subscribers', async () => {
    await withFreshDatabase(async (url) => {
      const first = new PostgresBackend({ url, prefix: 'p', maxConns: 1 });
      await first.ready();
      await first.append({ id: ['old'], expectedSequence: 0, events: [{ type: 'T', sequence: 0, timestamp: 5, data: '1' }] });
      await first.close();
      // Back to what version 1 left: no feed tables, no 8-argument append, version 1.
      const check = postgres(url, { max: 1 });
      await check`DROP TABLE timebox_feed, timebox_feed_horizon, timebox_feed_listener`;
      await check`DROP FUNCTION timebox_append(text, text, bigint, json, text, bigint, json, integer)`;
      await check`DROP TABLE timebox_projection`;
      await check`UPDATE timebox_schema_version SET version = 1`;
      const second = new PostgresBackend({ url, prefix: 'p', maxConns: 1 });
      await second.ready();
      expect(await check`SELECT version FROM timebox_schema_version`).toEqual([{ version: SCHEMA_VERSION }]);
      await expect(second.loadEvents(['old'], 0)).resolves.toEqual([{ type: 'T', sequence: 0, timestamp: 5, data: '1', position: 1 }]);
      const delivered: number[] = [];
      const feed = await second.watch({ events: (_, records) => delivered.push(...records.map((r) => r.sequence)), gap: () => undefined });
      await second.append({ id: ['old'], expectedSequence: 1, events: [{ type: 'T', sequence: 1, timestamp: 6, data: '2' }] });
      for (let i = 0; i < 200 && delivered.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 25));
      expect(delivered).toEqual([1]);
      await feed.close();
      await second.close();
      await check.end();
    });
  });

  it('migrates a version-3 database: positions in per-aggregate order, tombstones for archived IDs, archive records with positions', async () => {
    await withFreshDatabase(async (url) => {
      const old = postgres(url, { max: 1, onnotice: () => undefined });
      try {
        await ensureSchema(old, 3);
        // What a version-3 release wrote: "b" gets events at times 10 and 30, "a" at 20 and (a clock
        // that went backwards) 5, and "gone" was archived (its head row deleted) with its record unconsumed.
        const append = (aggregate: string, expected: number, events: [string, number, string][]) =>
          old`SELECT * FROM timebox_append('p', ${aggregate}, ${expected}, ${JSON.stringify(events)}::text::json, NULL, NULL, '[]'::json, 1000)`;
        await append('b', 0, [['T', 10, '"b0"']]);
        await append('a', 0, [['T', 20, '"a0"']]);
        await append('b', 1, [['T', 30, '"b1"']]);
        await append('a', 1, [['T', 5, '"a1"']]);
        await append('gone', 0, [
          ['T', 1, '"g0"'],
          ['T', 2, '"g1"'],
          ['T', 3, '"g2"'],
        ]);
        await old`SELECT timebox_archive_aggregate('p', 'gone')`;
        expect(await old`SELECT count(*)::int AS n FROM timebox_index WHERE aggregate = 'gone'`).toEqual([{ n: 0 }]);
      } finally {
        await old.end();
      }
      const backend = new PostgresBackend({ url, prefix: 'p', maxConns: 2 });
      try {
        await backend.ready();
        const page = await backend.readLog({ after: [0], limit: 100 });
        // Ordered by the running maximum of each aggregate's times: b0 (10), a0 (20), a1 (20: a's
        // clock went back, its order stays), b1 (30).
        expect(page.entries.map((e) => [e.id[0], e.event.sequence, e.event.position])).toEqual([
          ['b', 0, 1],
          ['a', 0, 2],
          ['a', 1, 3],
          ['b', 1, 4],
        ]);
        expect(page.end).toBe(true);
        // The sequence goes on above the numbered rows, and archive records got positions beyond them.
        const appended = await backend.append({
          id: ['a'],
          expectedSequence: 2,
          events: [{ type: 'T', sequence: 2, timestamp: 40, data: '0' }],
        });
        expect(appended.ok && appended.positions[0]).toBeGreaterThan(4);
        const record = await new Promise<ArchiveRecordData>((resolve, reject) => {
          backend.consumeArchive(async (r) => resolve(r), undefined).catch(reject);
        });
        expect(record.events.map((e) => e.sequence)).toEqual([0, 1, 2]);
        for (const event of record.events) expect(event.position).toBeGreaterThan(4);
        // "gone" was archived at next sequence 3: its next life starts at 4, and it is not listed.
        expect(await backend.listAggregates([])).toEqual([['a'], ['b']]);
        await expect(backend.loadSnapshot(['gone'])).resolves.toEqual({ data: undefined, sequence: 4, events: [] });
        const stale = await backend.append({
          id: ['gone'],
          expectedSequence: 0,
          events: [{ type: 'T', sequence: 0, timestamp: 9, data: '0' }],
        });
        expect(stale).toMatchObject({ ok: false, actualSequence: 4 });
      } finally {
        await backend.close();
      }
    });
  });

  it('refuses a schema newer than this release', async () => {
    await withFreshDatabase(async (url) => {
      const first = new PostgresBackend({ url, prefix: 'p', maxConns: 1 });
      await first.ready();
      await first.close();
      const check = postgres(url, { max: 1 });
      await check`UPDATE timebox_schema_version SET version = ${SCHEMA_VERSION + 1}`;
      await check.end();
      const later = new PostgresBackend({ url, prefix: 'p', maxConns: 1 });
      const error = await later.ready().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SchemaVersionError);
      expect((error as Error).message).toMatch(new RegExp(`schema version ${SCHEMA_VERSION + 1}.*supports up to ${SCHEMA_VERSION}`));
      await later.close();
    });
  });
});

describe('test server setup', () => {
  it('starts a throwaway cluster with initdb and postgres, serves a store, and removes it', async () => {
    const server = await startThrowawayCluster();
    try {
      expect(server.source).toBe('throwaway cluster');
      const backend = new PostgresBackend({ url: server.url, prefix: 'throwaway', maxConns: 1 });
      await backend.append({ id: ['t'], expectedSequence: 0, events: [{ type: 'T', sequence: 0, timestamp: 7, data: '"x"' }] });
      await expect(backend.loadEvents(['t'], 0)).resolves.toEqual([{ type: 'T', sequence: 0, timestamp: 7, data: '"x"', position: 1 }]);
      await backend.close();
    } finally {
      await server.stop();
    }
    const probe = postgres(server.url, { max: 1, connect_timeout: 2 });
    await expect(probe`SELECT 1`).rejects.toThrow();
    await probe.end();
  }, 60_000);
});
