import { randomUUID } from 'node:crypto';
import { getPostgreSQLEventStore, type PostgresEventStore } from '@event-driven-io/emmett-postgresql';
import type { AggregateId, Store } from '@timebox/core';
import { createPostgresStore } from '@timebox/postgres';
import pg from 'pg';
import postgres, { type Sql } from 'postgres';
import { runPool, type Comparison, type Trial, type Workload } from '../harness.js';
import { SuiteUnavailableError, type BackendBench } from '../suite.js';
import { counterIds, createCounterExecutor, increment, INCREMENTED_DATA, opsOn, type CounterEvents } from './counter.js';

/**
 * Connections per pool, the same for the subject and every baseline. 10 is the default of all
 * three (postgres.js, node-postgres under Emmett, and `@timebox/postgres`).
 */
export const POOL_SIZE = 10;

export interface PostgresSizes {
  /** Operations per trial, dealt round-robin over `aggregates`. */
  readonly ops: number;
  readonly aggregates: number;
  /** Operations in flight at once. */
  readonly concurrency: number;
}

export const FULL_SIZES: PostgresSizes = { ops: 20_000, aggregates: 1_000, concurrency: 64 };
export const QUICK_SIZES: PostgresSizes = { ops: 4_000, aggregates: 1_000, concurrency: 64 };

/** Where the benchmarks find PostgreSQL: `TIMEBOX_POSTGRES_URL`, else the default local port. */
function serverUrl(): string {
  return process.env.TIMEBOX_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
}

/** The workloads; every one runs against `url` (a database of its own on the server). */
export function postgresComparisons(url: string, admin: Sql, emmett: PostgresEventStore, sizes: PostgresSizes): Comparison[] {
  if (sizes.aggregates <= sizes.concurrency) {
    // Appends compute each sequence from the operation index, which is only right when no two
    // operations in flight touch the same aggregate.
    throw new RangeError(`aggregates (${sizes.aggregates}) must exceed concurrency (${sizes.concurrency})`);
  }
  const pattern = `${sizes.aggregates.toLocaleString('en-US')} aggregates, ${sizes.concurrency} in flight, pool ${POOL_SIZE}`;
  const params = { ops: sizes.ops, aggregates: sizes.aggregates, concurrency: sizes.concurrency, poolSize: POOL_SIZE };
  const append = appendWorkload(url, admin, sizes);
  const exec = execWorkload(url, admin, sizes);
  const insert = insertWorkload(url, admin, sizes);
  const emmettAppend = emmettWorkload(emmett, admin, sizes);
  return [
    { key: 'append-vs-insert', title: `store.appendEvents vs one INSERT, ${pattern}`, params, subject: append, baseline: insert },
    { key: 'append-vs-emmett', title: `store.appendEvents vs Emmett appendToStream, ${pattern}`, params, subject: append, baseline: emmettAppend },
    { key: 'exec-vs-insert', title: `executor.exec vs one INSERT, ${pattern}`, params, subject: exec, baseline: insert },
    { key: 'exec-vs-emmett', title: `executor.exec vs Emmett appendToStream, ${pattern}`, params, subject: exec, baseline: emmettAppend },
  ];
}

/** Throws unless `counts` (key → rows) gives every aggregate exactly its share. */
function checkShares(what: string, counts: Map<string, number>, keys: readonly string[], ops: number): void {
  for (let n = 0; n < keys.length; n++) {
    const expected = opsOn(n, ops, keys.length);
    const found = counts.get(keys[n] as string) ?? 0;
    if (found !== expected) throw new Error(`${what} ${n}: expected ${expected} rows, found ${found}`);
  }
}

/** A Timebox store with a fresh prefix and its pool connected, so timing excludes connecting. */
async function openStore(url: string): Promise<{ store: Store<CounterEvents>; prefix: string }> {
  const prefix = `bench-${randomUUID()}`;
  const store = createPostgresStore<CounterEvents>({}, { url, prefix, maxConns: POOL_SIZE });
  await store.ready();
  await Promise.all(Array.from({ length: POOL_SIZE }, () => store.getAggregateStatus(['warm'])));
  return { store, prefix };
}

/** Checks that each aggregate's events are exactly its share, numbered 0… without gaps. */
async function verifyTimebox(admin: Sql, prefix: string, ids: readonly AggregateId[], ops: number): Promise<void> {
  const rows = await admin<{ aggregate: string; n: number; top: number }[]>`
    SELECT aggregate, count(*)::int AS n, max(sequence)::int AS top FROM timebox_events WHERE prefix = ${prefix} GROUP BY aggregate`;
  for (const row of rows) {
    if (row.top !== row.n - 1) throw new Error(`aggregate ${row.aggregate}: ${row.n} events but top sequence ${row.top}`);
  }
  checkShares('aggregate', new Map(rows.map((row) => [row.aggregate, row.n])), ids.map((id) => id.join(':')), ops);
}

async function deleteTimebox(admin: Sql, prefix: string): Promise<void> {
  await admin`DELETE FROM timebox_events WHERE prefix = ${prefix}`;
  await admin`DELETE FROM timebox_index WHERE prefix = ${prefix}`;
}

/** `store.appendEvents(id, sequence, [one event])`, op i on aggregate i mod aggregates. */
function appendWorkload(url: string, admin: Sql, { ops, aggregates, concurrency }: PostgresSizes): Workload {
  const ids = counterIds(aggregates);
  return {
    label: 'store.appendEvents',
    ops,
    async prepare(): Promise<Trial> {
      const { store, prefix } = await openStore(url);
      return {
        run: () =>
          runPool(ops, concurrency, (i) =>
            store.appendEvents(ids[i % aggregates] as AggregateId, Math.floor(i / aggregates), [{ type: 'Incremented', data: { by: 1 } }]),
          ),
        verify: () => verifyTimebox(admin, prefix, ids, ops),
        async close() {
          await store.close();
          await deleteTimebox(admin, prefix);
        },
      };
    },
  };
}

/**
 * `executor.exec(id, increment)`, op i on aggregate i mod aggregates. The executor's cache is
 * filled before timing (one load per aggregate), so this measures the exec path, not cold loads.
 */
function execWorkload(url: string, admin: Sql, { ops, aggregates, concurrency }: PostgresSizes): Workload {
  const ids = counterIds(aggregates);
  return {
    label: 'executor.exec',
    ops,
    async prepare(): Promise<Trial> {
      const { store, prefix } = await openStore(url);
      const executor = createCounterExecutor(store, aggregates);
      await runPool(aggregates, concurrency, (n) => executor.get(ids[n] as AggregateId));
      return {
        run: () => runPool(ops, concurrency, (i) => executor.exec(ids[i % aggregates] as AggregateId, increment)),
        verify: () => verifyTimebox(admin, prefix, ids, ops),
        async close() {
          await store.close();
          await deleteTimebox(admin, prefix);
        },
      };
    },
  };
}

const PLAIN_TABLE = 'timebox_bench_plain';

/**
 * The least a user could do: one single-row INSERT per append through postgres.js, relying on
 * the primary key (stream, sequence) alone for concurrency control.
 */
function insertWorkload(url: string, admin: Sql, { ops, aggregates, concurrency }: PostgresSizes): Workload {
  return {
    label: 'INSERT',
    ops,
    async prepare(): Promise<Trial> {
      const streams = Array.from({ length: aggregates }, (_, n) => `${randomUUID()}:${n}`);
      const sql = postgres(url, { max: POOL_SIZE, onnotice: () => undefined });
      await Promise.all(Array.from({ length: POOL_SIZE }, () => sql`SELECT 1`));
      return {
        run: () =>
          runPool(ops, concurrency, async (i) => {
            await sql`INSERT INTO timebox_bench_plain (stream, sequence, type, time_ms, data)
                      VALUES (${streams[i % aggregates] as string}, ${Math.floor(i / aggregates)}, 'Incremented', ${Date.now()}, ${INCREMENTED_DATA})`;
          }),
        async verify() {
          const rows = await admin<{ stream: string; n: number }[]>`
            SELECT stream, count(*)::int AS n FROM ${admin(PLAIN_TABLE)} WHERE stream = ANY(${streams}) GROUP BY stream`;
          checkShares('stream', new Map(rows.map((row) => [row.stream, row.n])), streams, ops);
        },
        async close() {
          await sql.end();
          await admin`DELETE FROM ${admin(PLAIN_TABLE)} WHERE stream = ANY(${streams})`;
        },
      };
    },
  };
}

/** The peer library: Emmett's PostgreSQL event store appending with an expected stream version. */
function emmettWorkload(emmett: PostgresEventStore, admin: Sql, { ops, aggregates, concurrency }: PostgresSizes): Workload {
  return {
    label: 'emmett.appendToStream',
    ops,
    async prepare(): Promise<Trial> {
      const streams = Array.from({ length: aggregates }, (_, n) => `counter-${randomUUID()}-${n}`);
      return {
        run: () =>
          runPool(ops, concurrency, (i) =>
            emmett.appendToStream(streams[i % aggregates] as string, [{ type: 'Incremented', data: { by: 1 } }], {
              expectedStreamVersion: BigInt(Math.floor(i / aggregates)),
            }),
          ),
        async verify() {
          const rows = await admin<{ stream: string; n: number }[]>`
            SELECT stream_id AS stream, count(*)::int AS n FROM emt_messages WHERE stream_id = ANY(${streams}) GROUP BY stream_id`;
          checkShares('stream', new Map(rows.map((row) => [row.stream, row.n])), streams, ops);
        },
        async close() {
          await admin`DELETE FROM emt_messages WHERE stream_id = ANY(${streams})`;
          await admin`DELETE FROM emt_streams WHERE stream_id = ANY(${streams})`;
        },
      };
    },
  };
}

/**
 * The postgres benchmarks. Everything runs in a database created for the run on the server the
 * tests use, and dropped afterwards, so the bench leaves no tables or rows behind.
 */
export const postgresBench: BackendBench = {
  name: 'postgres',
  async open({ quick, progress }) {
    const url = serverUrl();
    const server = postgres(url, { max: 1, connect_timeout: 5, onnotice: () => undefined });
    try {
      await server`SELECT 1`;
    } catch (error) {
      await server.end({ timeout: 1 }).catch(() => undefined);
      throw new SuiteUnavailableError(
        `no PostgreSQL answers at ${url} (${error instanceof Error ? error.message : String(error)}): ` +
          'start one on the default port (apt-get install postgresql) or set TIMEBOX_POSTGRES_URL',
      );
    }
    const database = `timebox_bench_${randomUUID().replace(/-/g, '')}`;
    await server`CREATE DATABASE ${server(database)}`;
    const benchUrl = new URL(url);
    benchUrl.pathname = `/${database}`;
    const dbUrl = benchUrl.toString();
    progress(`database ${database} on ${url}`);
    const admin = postgres(dbUrl, { max: 2, onnotice: () => undefined });
    // Emmett gets a pg pool we own: its own pooling keeps a pool per connection string with a
    // usage count that `close()` does not bring to zero, so the pool would outlive the run and
    // crash the process with an unhandled error when the database is dropped.
    const emmettPool = new pg.Pool({ connectionString: dbUrl, max: POOL_SIZE });
    emmettPool.on('error', () => undefined); // idle clients of a dropped database
    const emmett = getPostgreSQLEventStore(dbUrl, { connectionOptions: { pool: emmettPool } });
    const close = async () => {
      await emmett.close().catch(() => undefined);
      await emmettPool.end().catch(() => undefined);
      await admin.end().catch(() => undefined);
      await server`DROP DATABASE IF EXISTS ${server(database)} WITH (FORCE)`;
      await server.end();
    };
    try {
      await admin`CREATE TABLE ${admin(PLAIN_TABLE)} (
        stream text NOT NULL, sequence bigint NOT NULL, type text NOT NULL, time_ms bigint NOT NULL, data text NOT NULL,
        PRIMARY KEY (stream, sequence))`;
      // Creates Emmett's schema (and the Timebox one) before anything is timed.
      await emmett.appendToStream(`setup-${randomUUID()}`, [{ type: 'Setup', data: {} }]);
      const setup = createPostgresStore({}, { url: dbUrl, prefix: 'setup', maxConns: 1 });
      await setup.ready();
      await setup.close();
      return { comparisons: postgresComparisons(dbUrl, admin, emmett, quick ? QUICK_SIZES : FULL_SIZES), close };
    } catch (error) {
      await close();
      throw error;
    }
  },
};
