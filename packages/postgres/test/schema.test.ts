import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { PostgresBackend, SCHEMA_VERSION, SchemaVersionError, UnreleasedSchemaError } from '../src/index.js';
import { ensureSchema } from '../src/schema.js';
import { adminSql, eventually, serverUrl, TIMEBOX_TABLES } from './helpers.js';
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
          const versions = await check<{ version: number }[]>`SELECT version FROM timebox_schema`;
          expect(versions).toEqual([{ version: SCHEMA_VERSION }]);
          // One definition of each function, and positions from an uncached sequence (the log reader relies on it).
          const functions = await check<{ name: string }[]>`
            SELECT proname AS name FROM pg_proc WHERE proname LIKE 'timebox%' ORDER BY 1`;
          expect(functions.map((f) => f.name)).toEqual([
            'timebox_archive_aggregate',
            'timebox_log_head',
            'timebox_log_settle',
            'timebox_log_writers',
            'timebox_projection_claim',
            'timebox_projection_save',
            'timebox_read_log',
            'timebox_save_snapshot',
          ]);
          expect(await check`SELECT cache_size::int AS cache FROM pg_sequences WHERE sequencename = 'timebox_position_seq'`).toEqual([
            { cache: 1 },
          ]);
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

  it('refuses, with a typed error and no change, the tables of an unreleased development build', async () => {
    await withFreshDatabase(async (url) => {
      // What development builds before the first release left: their version table (versions 1 to
      // 4 were never released) next to their data tables.
      const check = postgres(url, { max: 1, onnotice: () => undefined });
      try {
        await check`CREATE TABLE timebox_schema_version (
          singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton), version integer NOT NULL)`;
        await check`INSERT INTO timebox_schema_version (version) VALUES (4)`;
        await check`CREATE TABLE timebox_events (prefix text, aggregate text, sequence bigint)`;
        const backend = new PostgresBackend({ url, prefix: 'p', maxConns: 1 });
        const error = await backend.ready().catch((e: unknown) => e);
        await backend.close();
        expect(error).toBeInstanceOf(UnreleasedSchemaError);
        expect(error).toMatchObject({ code: 'POSTGRES_SCHEMA_UNRELEASED', found: 4 });
        expect((error as Error).message).toMatch(/unreleased development build.*version 4.*drop the timebox_\* tables/);
        // Rolled back whole: no version table of this release, nothing added to the old tables.
        const tables = await check<{ name: string }[]>`
          SELECT table_name AS name FROM information_schema.tables WHERE table_name LIKE 'timebox%' ORDER BY 1`;
        expect(tables.map((t) => t.name)).toEqual(['timebox_events', 'timebox_schema_version']);
      } finally {
        await check.end();
      }
    });
  });

  it('migrates a version 1 database to version 2, keeping its events, and serves subscribers from the log', async () => {
    await withFreshDatabase(async (url) => {
      const check = postgres(url, { max: 1, onnotice: () => undefined, fetch_types: false });
      try {
        await ensureSchema(check, 1);
        // Written by a version 1 release: its append function, which also wrote a feed row.
        await check`SELECT * FROM timebox_append('p', 'kept', 0, '[["T", 5, "1"]]'::json, NULL, NULL, '[]'::json, 10000)`;
        expect(await check`SELECT 1 FROM timebox_feed`).toHaveLength(1);
        const backend = new PostgresBackend({ url, prefix: 'p', maxConns: 1 });
        await backend.ready();
        expect(await check`SELECT version FROM timebox_schema`).toEqual([{ version: SCHEMA_VERSION }]);
        const tables = await check<{ name: string }[]>`
          SELECT table_name AS name FROM information_schema.tables WHERE table_name LIKE 'timebox%' ORDER BY 1`;
        expect(tables.map((t) => t.name)).toEqual(TIMEBOX_TABLES);
        expect(await check`SELECT 1 FROM pg_proc WHERE proname = 'timebox_append'`).toHaveLength(0);
        expect(await backend.loadEvents(['kept'], 0)).toEqual([{ type: 'T', sequence: 0, timestamp: 5, data: '1', position: 1 }]);
        // Appends and the feed work on the migrated tables.
        const seen: number[] = [];
        const feed = await backend.watch({
          events: (_id, records) => void seen.push(...records.map((r) => r.sequence)),
          gap: () => undefined,
        });
        await backend.append({ id: ['kept'], expectedSequence: 1, events: [{ type: 'T', sequence: 1, timestamp: 6, data: '2' }] });
        expect(await eventually(() => seen.length === 1)).toBe(true);
        expect(seen).toEqual([1]);
        await feed.close();
        await backend.close();
      } finally {
        await check.end();
      }
    });
  });

  it('refuses a schema newer than this release', async () => {
    await withFreshDatabase(async (url) => {
      const first = new PostgresBackend({ url, prefix: 'p', maxConns: 1 });
      await first.ready();
      await first.close();
      const check = postgres(url, { max: 1 });
      await check`UPDATE timebox_schema SET version = ${SCHEMA_VERSION + 1}`;
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
