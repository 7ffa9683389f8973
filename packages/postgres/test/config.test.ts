import { afterAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { ConfigError, StoreClosedError } from '@timebox/core';
import { createPostgresStore, PostgresBackend, type PostgresBackendOptions } from '../src/index.js';
import { resolveOptions } from '../src/options.js';
import { adminSql, deletePrefix, randomPrefix, serverUrl } from './helpers.js';

const admin = adminSql();
afterAll(() => admin.end());

function configErrorOf(options: unknown): ConfigError {
  try {
    new PostgresBackend(options as PostgresBackendOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`accepted ${JSON.stringify(options)}`);
}

describe('config', () => {
  it('rejects invalid options with ConfigError naming the field', () => {
    const cases: [unknown, string][] = [
      [undefined, 'options'],
      [{}, 'prefix'],
      [{ prefix: '' }, 'prefix'],
      [{ prefix: 7 }, 'prefix'],
      [{ prefix: 'p', maxConns: 0 }, 'maxConns'],
      [{ prefix: 'p', maxConns: -1 }, 'maxConns'],
      [{ prefix: 'p', maxConns: 1.5 }, 'maxConns'],
      [{ prefix: 'p', maxConns: '4' }, 'maxConns'],
      [{ prefix: 'p', archiveLeaseMs: 0 }, 'archiveLeaseMs'],
      [{ prefix: 'p', archiveLeaseMs: Infinity }, 'archiveLeaseMs'],
      [{ prefix: 'p', url: '' }, 'url'],
      [{ prefix: 'p', url: 42 }, 'url'],
      [{ prefix: 'p', postgres: 'ssl' }, 'postgres'],
      [{ prefix: 'p', sql: {} }, 'sql'],
      [{ prefix: 'p', sql: postgres(), url: 'postgres://x/y' }, 'url'],
      [{ prefix: 'p', sql: postgres(), maxConns: 3 }, 'maxConns'],
      [{ prefix: 'p', sql: postgres(), postgres: { ssl: true } }, 'postgres'],
    ];
    for (const [options, field] of cases) {
      const error = configErrorOf(options);
      expect(error.field, JSON.stringify(options)).toBe(field);
      expect(error.message).toContain(field);
    }
  });

  it('validates the store config too', () => {
    expect(() => createPostgresStore({ maxRetries: 0 }, { prefix: 'p', url: serverUrl() })).toThrow(ConfigError);
  });

  it('runs on an existing postgres.js instance and leaves it open on close', async () => {
    const prefix = randomPrefix('own-sql');
    const sql = postgres(serverUrl(), { max: 2, onnotice: () => undefined });
    try {
      const store = createPostgresStore({}, { sql, prefix });
      await store.appendEvents(['mine'], 0, [{ type: 'A', data: { ok: true } }]);
      await store.close();
      await expect(store.getEvents(['mine'])).rejects.toBeInstanceOf(StoreClosedError);
      // The caller's pool still works, and sees what the store wrote.
      const rows = await sql`SELECT count(*)::int AS n FROM timebox_events WHERE prefix = ${prefix}`;
      expect(rows[0]!.n).toBe(1);
    } finally {
      await deletePrefix(admin, prefix);
      await sql.end();
    }
  });

  it('opens its own pools with fetch_types off, even when the postgres options ask for it', async () => {
    // With fetch_types on, postgres.js 3.4 runs a catalog query first on every new connection and
    // drops its promise: a connection ended during it crashes the process (see faults.test.ts).
    for (const driverOptions of [undefined, {}, { fetch_types: true }]) {
      const resolved = resolveOptions({ prefix: 'p', url: serverUrl(), postgres: driverOptions as never });
      try {
        expect(resolved.ownsSql).toBe(true);
        expect(resolved.sql.options.fetch_types, JSON.stringify(driverOptions)).toBe(false);
      } finally {
        await resolved.sql.end();
      }
    }
  });

  for (const fetchTypes of [true, false]) {
    it(`works on a caller's instance with fetch_types ${fetchTypes ? 'on' : 'off'}: appends, conflicts, snapshots, labels, archive, projection transactions`, async () => {
      const prefix = randomPrefix(`own-sql-types-${fetchTypes}`);
      const sql = postgres(serverUrl(), { max: 2, fetch_types: fetchTypes, onnotice: () => undefined });
      const backend = new PostgresBackend({ sql, prefix, archiveLeaseMs: 1_000 });
      try {
        expect(sql.options.fetch_types).toBe(fetchTypes);
        const events = [
          { type: 'Opened', sequence: 0, timestamp: 1_700_000_000_123, data: '{"a":[1,2],"q":"\\"x\\""}' },
          { type: 'Set,{"}', sequence: 1, timestamp: -5, data: '"NULL"' },
        ];
        const id = ['acct', 'a,b{c}'];
        await expect(
          backend.append({
            id,
            expectedSequence: 0,
            events,
            index: { status: 'open', statusTime: 9, labels: { 'tier,"x"': '{gold}', gone: '' } },
          }),
        ).resolves.toEqual({ ok: true, positions: [expect.any(Number), expect.any(Number)] });
        // Positions come back through the JSON position list and match what reads return.
        const stored = await backend.loadEvents(id, 0);
        expect(stored.map(({ position: _, ...event }) => event)).toEqual(events);
        const [first, second] = stored.map((event) => event.position) as [number, number];
        expect(second).toBeGreaterThan(first);
        // A conflict returns the stored events, which come back through the JSON event list.
        await expect(backend.append({ id, expectedSequence: 0, events: [events[0]!] })).resolves.toEqual({
          ok: false,
          actualSequence: 2,
          newEvents: stored,
        });
        await expect(backend.append({ id, expectedSequence: 1, events: [] })).resolves.toEqual({
          ok: false,
          actualSequence: 2,
          newEvents: [stored[1]],
        });
        await expect(backend.listLabelValues('tier,"x"', { limit: 10_000 })).resolves.toEqual({ items: ['{gold}'] });
        await expect(backend.listAggregatesByStatus('open', { limit: 10_000 })).resolves.toEqual({ items: [{ id, timestamp: 9 }] });
        await backend.saveSnapshot(id, '{"s":1}', 1, false);
        await expect(backend.loadSnapshot(id)).resolves.toEqual({ data: '{"s":1}', sequence: 1, events: [stored[1]] });
        const page = await backend.readLog({ after: [0], limit: 10 });
        expect(page.entries).toEqual(stored.map((event) => ({ id, event })));
        await backend.archive(id);
        let record: unknown;
        await backend.consumeArchive(async (r) => void (record = r), undefined);
        expect(record).toMatchObject({ aggregateId: id, snapshotData: '{"s":1}', snapshotSequence: 1, events: stored });
        await expect(backend.loadEvents(id, 0)).resolves.toEqual([]);
        // Projection transactions run on a second instance made from the caller's options.
        await backend.projections.claim('p', 'me', 10_000);
        const used: string[] = [];
        await expect(
          backend.saveProjectionWith('p', 'me', 0, { checkpoint: 'c' }, 10_000, async (tx) => {
            const [row] = await tx<{ name: string }[]>`SELECT current_setting('application_name') AS name`;
            used.push(row!.name);
          }),
        ).resolves.toBe('ok');
        expect(used).toEqual([sql.options.connection.application_name ?? '']);
        expect((await backend.projections.load('p'))?.checkpoint).toBe('c');
      } finally {
        await backend.close();
        // Closing the backend ended its own transaction pool, not the caller's instance.
        await expect(sql`SELECT 1 AS one`).resolves.toEqual([{ one: 1 }]);
        await deletePrefix(admin, prefix);
        await sql.end();
      }
    });
  }

  it('ends the pool it opened on close, and close is idempotent', async () => {
    const prefix = randomPrefix('own-pool');
    const applicationName = `timebox-close-${prefix.slice(-12)}`;
    const store = createPostgresStore({}, { url: serverUrl(), prefix, postgres: { connection: { application_name: applicationName } } });
    await store.appendEvents(['x'], 0, [{ type: 'A', data: {} }]);
    const count = async () =>
      (await admin<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = ${applicationName}`)[0]!.n;
    expect(await count()).toBeGreaterThan(0);
    await Promise.all([store.close(), store.close()]);
    await store.close();
    // The server drops the session a moment after the client's Terminate message.
    const deadline = Date.now() + 10_000;
    while ((await count()) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(await count()).toBe(0);
    await deletePrefix(admin, prefix);
  });

  it('rejects every call after close with StoreClosedError, waiting consumers included', async () => {
    const prefix = randomPrefix('closed');
    const backend = new PostgresBackend({ url: serverUrl(), prefix, maxConns: 2 });
    await backend.ready();
    const waiting = backend
      .consumeArchive(async () => undefined, undefined)
      .then(
        () => 'resolved',
        (error: unknown) => error,
      );
    await new Promise((resolve) => setTimeout(resolve, 50));
    await backend.close();
    expect(await waiting).toBeInstanceOf(StoreClosedError);
    await expect(backend.ready()).rejects.toBeInstanceOf(StoreClosedError);
    await expect(backend.loadEvents(['a'], 0)).rejects.toBeInstanceOf(StoreClosedError);
  });
});
