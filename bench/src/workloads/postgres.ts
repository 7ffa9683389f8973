import { randomUUID } from 'node:crypto';
import { PostgresEventStorageAdapter } from '@castore/event-storage-adapter-postgres';
import { getPostgreSQLEventStore, type PostgresEventStore } from '@event-driven-io/emmett-postgresql';
import type { AggregateId, Store } from '@timebox/core';
import { createPostgresStore } from '@timebox/postgres';
import pg from 'pg';
import postgres, { type Sql } from 'postgres';
import { runPool, runTimedPool, type Comparison, type Trial, type Unavailable, type Workload } from '../harness.js';
import { rssComparison } from '../rss/workload.js';
import { createThrowawayDatabase, postgresServerUrl } from '../postgres-database.js';
import { messageOf, type BackendBench } from '../suite.js';
import { coldLoadComparison, fillColdAggregates, type ColdSizes } from './coldload.js';
import { contentionWorkload, type SharedStores } from './contention.js';
import {
  appendWorkload,
  checkPattern,
  counterIds,
  execWorkload,
  INCREMENTED_DATA,
  opsOn,
  type CounterEvents,
  type TrialStore,
} from './counter.js';
import { emmettCatchUpWorkload, emmettLog } from './emmett-consumer.js';
import { feedCostComparison, projectionCostComparison } from './feed-cost.js';
import {
  CATCH_UP_FULL,
  CATCH_UP_QUICK,
  filledLog,
  projectionComparisons,
  type CatchUpSizes,
  type FilledLog,
  type LagSizes,
} from './projection.js';
import { appendGap, gateComparison, readSideGap } from './read-side.js';

/**
 * Connections per pool, the same for the subject and every baseline. 10 is the default of all
 * three (postgres.js, node-postgres under Emmett, and `@timebox/postgres`).
 */
export const POOL_SIZE = 10;

export interface PostgresSizes {
  /** Sequential operations on the one hot aggregate. */
  readonly hotOps: number;
  /** Operations per trial, dealt round-robin over `aggregates`, `concurrency` in flight. */
  readonly ops: number;
  readonly aggregates: number;
  readonly concurrency: number;
  /** Appends per trial in the latency workload at 1 in flight (at `concurrency`: `ops`). */
  readonly latencyOps: number;
  readonly cold: ColdSizes;
  readonly writers: number;
  readonly opsPerWriter: number;
  /** The log `projection-catch-up` reads (on both sides). */
  readonly catchUp: CatchUpSizes;
  readonly lag: LagSizes;
}

export const FULL_SIZES: PostgresSizes = {
  hotOps: 400,
  ops: 4_000,
  aggregates: 10_000,
  concurrency: 64,
  latencyOps: 400,
  cold: { events: 10_000, tail: 100, loads: 5 },
  writers: 8,
  opsPerWriter: 25,
  catchUp: CATCH_UP_FULL,
  lag: { ops: 2_000, aggregates: 10_000, concurrency: 64, maxMs: 5_000 },
};
export const QUICK_SIZES: PostgresSizes = {
  hotOps: 100,
  ops: 600,
  aggregates: 10_000,
  concurrency: 64,
  latencyOps: 100,
  cold: { events: 10_000, tail: 100, loads: 2 },
  writers: 8,
  opsPerWriter: 8,
  catchUp: CATCH_UP_QUICK,
  lag: { ops: 600, aggregates: 10_000, concurrency: 64, maxMs: 2_000 },
};

/** An op pattern of the baselines: op i on stream i mod `aggregates`, at its next version. */
interface Pattern {
  readonly ops: number;
  readonly aggregates: number;
  readonly concurrency: number;
}

/** Where the benchmarks find PostgreSQL: `TIMEBOX_POSTGRES_URL`, else the default local port. */
/** What the comparisons run on, opened by `postgresBench.open`. */
interface Context {
  readonly url: string;
  readonly admin: Sql;
  readonly emmett: PostgresEventStore;
  readonly castore: PostgresEventStorageAdapter | Unavailable;
  readonly coldStore: Store<CounterEvents>;
  /** The Timebox catch-up log (filled on first use). */
  readonly catchUpLog: FilledLog;
  /** Why no Timebox side can run on this build's postgres backend (`appendGap`), or undefined. */
  readonly timeboxGap: string | undefined;
  /** Why Timebox projections cannot run on it (`timeboxGap`, else `readSideGap`), or undefined. */
  readonly readSideGap: string | undefined;
  readonly progress: (line: string) => void;
}

/**
 * The workloads; every one runs against `ctx.url` (a database of its own on the server). With a
 * `ctx.timeboxGap`, every Timebox side is unavailable with that reason and only the baselines run;
 * with a `ctx.readSideGap`, so are the Timebox sides of the projection rows.
 */
export function postgresComparisons(ctx: Context, sizes: PostgresSizes): Comparison[] {
  return [
    ...writeComparisons(ctx, sizes).map((comparison) =>
      gateComparison(comparison, ctx.timeboxGap, comparison.key === 'cold-load' || comparison.key === 'contention'),
    ),
    ...projectionComparisons({
      catchUp: sizes.catchUp,
      lag: sizes.lag,
      log: ctx.catchUpLog,
      lagOpen: () => openStore(ctx.url, ctx.admin),
      readSide: ctx.readSideGap,
      peers: emmettPeers(ctx, sizes.catchUp),
      params: { poolSize: POOL_SIZE },
    }),
  ];
}

/** The write and load workloads (exec, append latency, cold load, contention, memory). */
function writeComparisons(ctx: Context, sizes: PostgresSizes): Comparison[] {
  const { url, admin } = ctx;
  const c = sizes.concurrency;
  const spread = `${sizes.aggregates.toLocaleString('en-US')} aggregates, ${c} in flight, pools of ${POOL_SIZE}`;
  const open = () => openStore(url, admin);
  const baselines = (pattern: Pattern, latency: boolean): (Workload | Unavailable)[] => [
    insertWorkload(url, admin, pattern, latency),
    emmettWorkload(ctx.emmett, admin, pattern, latency),
    'unavailable' in ctx.castore ? ctx.castore : castoreWorkload(ctx.castore, admin, pattern, latency),
  ];
  const hot: Pattern = { ops: sizes.hotOps, aggregates: 1, concurrency: 1 };
  const many: Pattern = { ops: sizes.ops, aggregates: sizes.aggregates, concurrency: c };
  const latency = (pattern: Pattern): Comparison => ({
    key: `append-latency-${pattern.concurrency}`,
    title: `store.appendEvents latency, ${pattern.concurrency} in flight over ${sizes.aggregates.toLocaleString('en-US')} aggregates`,
    kind: 'latency',
    params: { ...pattern, poolSize: POOL_SIZE },
    subject: appendWorkload(
      'store.appendEvents',
      open,
      { ops: pattern.ops, ids: counterIds(pattern.aggregates), concurrency: pattern.concurrency },
      true,
    ),
    baselines: baselines(pattern, true),
    // Issue 18: one at a time, as fast as Emmett and 0.8 of a raw INSERT; at 64, as fast as Castore.
    targets:
      pattern.concurrency === 1
        ? { 'Emmett appendToStream': { atLeast: 1 }, 'postgres.js INSERT': { atLeast: 0.8 } }
        : { 'Castore pushEvent': { atLeast: 1 } },
  });
  const hotIds = counterIds(1);
  return [
    {
      key: 'exec-hot',
      title: 'executor.exec, one hot aggregate, sequential',
      kind: 'throughput',
      params: { ...hot, poolSize: POOL_SIZE },
      subject: execWorkload('executor.exec', open, { ops: hot.ops, ids: hotIds, concurrency: 1 }),
      baselines: baselines(hot, false),
    },
    {
      key: 'exec-many',
      title: `executor.exec, ${spread}`,
      kind: 'throughput',
      params: { ...many, poolSize: POOL_SIZE },
      subject: execWorkload('executor.exec', open, { ops: many.ops, ids: counterIds(many.aggregates), concurrency: c }),
      baselines: baselines(many, false),
    },
    latency({ ops: sizes.latencyOps, aggregates: sizes.aggregates, concurrency: 1 }),
    latency(many),
    feedCostComparison(open, { ops: many.ops, ids: counterIds(many.aggregates), concurrency: c }, { poolSize: POOL_SIZE }),
    projectionCostComparison(open, { ops: many.ops, ids: counterIds(many.aggregates), concurrency: c }, { poolSize: POOL_SIZE }),
    coldLoadComparison(ctx.coldStore, sizes.cold),
    {
      key: 'contention',
      title: `contention: ${sizes.writers} writers (stores on one prefix, pools of 2) on one aggregate`,
      kind: 'throughput',
      params: { writers: sizes.writers, opsPerWriter: sizes.opsPerWriter },
      subject: contentionWorkload(
        `${sizes.writers} writers`,
        () => openShared(url, admin, sizes.writers),
        sizes.writers,
        sizes.opsPerWriter,
      ),
      baselines: [execWorkload('1 writer, same total', open, { ops: sizes.writers * sizes.opsPerWriter, ids: hotIds, concurrency: 1 })],
    },
    rssComparison('postgres', { count: sizes.aggregates, url, cleanup: (prefix) => deleteTimebox(admin, prefix) }),
  ];
}

/**
 * Emmett's consumer catching up over the same number of events in its own store, twice: with its
 * documented default wait between pulls (50 ms), and with 1 ms, which shows how much of its time
 * that wait is. Both pull batches of the same size as the Timebox projection.
 */
function emmettPeers(ctx: Context, sizes: CatchUpSizes): Workload[] {
  const log = emmettLog(ctx.emmett, ctx.admin, sizes, ctx.progress);
  return [
    emmettCatchUpWorkload(ctx.emmett, ctx.admin, log, sizes.events),
    emmettCatchUpWorkload(ctx.emmett, ctx.admin, log, sizes.events, 1),
  ];
}

/** Runs `one` over the pattern, timing each op into `latencies` when asked. */
function runPattern(pattern: Pattern, one: (i: number) => Promise<unknown>, latencies: number[] | undefined): Promise<void> {
  return latencies === undefined
    ? runPool(pattern.ops, pattern.concurrency, one)
    : runTimedPool(pattern.ops, pattern.concurrency, one, latencies);
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
async function openStore(url: string, admin: Sql): Promise<TrialStore> {
  const prefix = `bench-${randomUUID()}`;
  const store = createPostgresStore<CounterEvents>({}, { url, prefix, maxConns: POOL_SIZE });
  await store.ready();
  await Promise.all(Array.from({ length: POOL_SIZE }, () => store.getAggregateStatus(['warm'])));
  return {
    store,
    verify: (ids, ops) => verifyTimebox(admin, prefix, ids, ops),
    async close() {
      await store.close();
      await deleteTimebox(admin, prefix);
    },
  };
}

/** `writers` stores (pools of 2) on one fresh prefix: separate processes' view of one store. */
async function openShared(url: string, admin: Sql, writers: number): Promise<SharedStores> {
  const prefix = `bench-${randomUUID()}`;
  const stores = Array.from({ length: writers }, () => createPostgresStore<CounterEvents>({}, { url, prefix, maxConns: 2 }));
  await Promise.all(stores.map((store) => store.ready()));
  return {
    stores,
    async close() {
      await Promise.all(stores.map((store) => store.close()));
      await deleteTimebox(admin, prefix);
    },
  };
}

/** Checks that each aggregate's events are exactly its share, numbered 0… without gaps. */
async function verifyTimebox(admin: Sql, prefix: string, ids: readonly AggregateId[], ops: number): Promise<void> {
  const rows = await admin<{ aggregate: string; n: number; top: number }[]>`
    SELECT aggregate, count(*)::int AS n, max(sequence)::int AS top FROM timebox_events WHERE prefix = ${prefix} GROUP BY aggregate`;
  for (const row of rows) {
    if (row.top !== row.n - 1) throw new Error(`aggregate ${row.aggregate}: ${row.n} events but top sequence ${row.top}`);
  }
  checkShares(
    'aggregate',
    new Map(rows.map((row) => [row.aggregate, row.n])),
    ids.map((id) => id.join(':')),
    ops,
  );
}

async function deleteTimebox(admin: Sql, prefix: string): Promise<void> {
  await admin`DELETE FROM timebox_events WHERE prefix = ${prefix}`;
  await admin`DELETE FROM timebox_index WHERE prefix = ${prefix}`;
}

const PLAIN_TABLE = 'timebox_bench_plain';

/**
 * The least a user could do: one single-row INSERT per append through postgres.js, relying on
 * the primary key (stream, sequence) alone for concurrency control.
 */
function insertWorkload(url: string, admin: Sql, pattern: Pattern, latency: boolean): Workload {
  const { ops, aggregates } = pattern;
  checkPattern({ ids: { length: aggregates } as unknown[], concurrency: pattern.concurrency });
  return {
    label: 'postgres.js INSERT',
    ops,
    async prepare(): Promise<Trial> {
      const streams = Array.from({ length: aggregates }, (_, n) => `${randomUUID()}:${n}`);
      const sql = postgres(url, { max: POOL_SIZE, onnotice: () => undefined });
      await Promise.all(Array.from({ length: POOL_SIZE }, () => sql`SELECT 1`));
      const latencies: number[] = [];
      return {
        run: () =>
          runPattern(
            pattern,
            (i) => sql`INSERT INTO timebox_bench_plain (stream, sequence, type, time_ms, data)
                       VALUES (${streams[i % aggregates] as string}, ${Math.floor(i / aggregates)}, 'Incremented', ${Date.now()}, ${INCREMENTED_DATA})`,
            latency ? latencies : undefined,
          ),
        async verify() {
          const rows = await admin<{ stream: string; n: number }[]>`
            SELECT stream, count(*)::int AS n FROM ${admin(PLAIN_TABLE)} WHERE stream = ANY(${streams}) GROUP BY stream`;
          checkShares('stream', new Map(rows.map((row) => [row.stream, row.n])), streams, ops);
        },
        async close() {
          await sql.end();
          await admin`DELETE FROM ${admin(PLAIN_TABLE)} WHERE stream = ANY(${streams})`;
        },
        ...(latency ? { latencies: () => latencies } : {}),
      };
    },
  };
}

/** The peer library: Emmett's PostgreSQL event store appending with an expected stream version. */
function emmettWorkload(emmett: PostgresEventStore, admin: Sql, pattern: Pattern, latency: boolean): Workload {
  const { ops, aggregates } = pattern;
  return {
    label: 'Emmett appendToStream',
    ops,
    async prepare(): Promise<Trial> {
      const streams = Array.from({ length: aggregates }, (_, n) => `counter-${randomUUID()}-${n}`);
      const latencies: number[] = [];
      return {
        run: () =>
          runPattern(
            pattern,
            (i) =>
              emmett.appendToStream(streams[i % aggregates] as string, [{ type: 'Incremented', data: { by: 1 } }], {
                expectedStreamVersion: BigInt(Math.floor(i / aggregates)),
              }),
            latency ? latencies : undefined,
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
        ...(latency ? { latencies: () => latencies } : {}),
      };
    },
  };
}

const CASTORE_TABLE = 'castore_event';
const CASTORE_STORE = 'counters';

/**
 * The second peer library: Castore's PostgreSQL adapter `pushEvent` at the next version (its
 * versions start at 1); the unique key (store, aggregate, version) is its concurrency check.
 */
function castoreWorkload(adapter: PostgresEventStorageAdapter, admin: Sql, pattern: Pattern, latency: boolean): Workload {
  const { ops, aggregates } = pattern;
  return {
    label: 'Castore pushEvent',
    ops,
    async prepare(): Promise<Trial> {
      const streams = Array.from({ length: aggregates }, () => randomUUID());
      const latencies: number[] = [];
      return {
        run: () =>
          runPattern(
            pattern,
            (i) =>
              adapter.pushEvent(
                {
                  aggregateId: streams[i % aggregates] as string,
                  version: Math.floor(i / aggregates) + 1,
                  type: 'Incremented',
                  payload: { by: 1 },
                },
                { eventStoreId: CASTORE_STORE },
              ),
            latency ? latencies : undefined,
          ),
        async verify() {
          const rows = await admin<{ stream: string; n: number }[]>`
            SELECT aggregate_id::text AS stream, count(*)::int AS n FROM ${admin(CASTORE_TABLE)}
            WHERE aggregate_name = ${CASTORE_STORE} AND aggregate_id = ANY(${streams}::uuid[]) GROUP BY aggregate_id`;
          checkShares('stream', new Map(rows.map((row) => [row.stream, row.n])), streams, ops);
        },
        async close() {
          await admin`DELETE FROM ${admin(CASTORE_TABLE)} WHERE aggregate_name = ${CASTORE_STORE} AND aggregate_id = ANY(${streams}::uuid[])`;
        },
        ...(latency ? { latencies: () => latencies } : {}),
      };
    },
  };
}

/** Castore's adapter over its own table, or why it cannot be measured. */
async function openCastore(dbUrl: string): Promise<PostgresEventStorageAdapter | Unavailable> {
  try {
    await PostgresEventStorageAdapter.createEventTable({ connectionString: dbUrl, tableName: CASTORE_TABLE });
    const adapter = new PostgresEventStorageAdapter({ connectionString: dbUrl, tableName: CASTORE_TABLE });
    // Its pool (postgres.js defaults: 10 connections, the same as every other pool here).
    await adapter.getEvents(randomUUID(), { eventStoreId: CASTORE_STORE });
    return adapter;
  } catch (error) {
    return { label: 'Castore pushEvent', unavailable: `Castore's PostgreSQL adapter failed to start: ${messageOf(error)}` };
  }
}

/** Ends the adapter's pool; it has no close method of its own. */
async function closeCastore(adapter: PostgresEventStorageAdapter | Unavailable): Promise<void> {
  if ('unavailable' in adapter) return;
  const sql = (adapter as unknown as { _sql?: Sql })._sql;
  await sql?.end({ timeout: 5 });
}

/**
 * The postgres benchmarks. Everything runs in a database created for the run on the server the
 * tests use, and dropped afterwards, so the bench leaves no tables or rows behind.
 */
export const postgresBench: BackendBench = {
  name: 'postgres',
  async open({ quick, progress }) {
    const database = await createThrowawayDatabase('timebox_bench');
    const dbUrl = database.url;
    progress(`database ${database.name} on ${postgresServerUrl()}`);
    const admin = postgres(dbUrl, { max: 2, onnotice: () => undefined });
    // Emmett gets a pg pool we own: its own pooling keeps a pool per connection string with a
    // usage count that `close()` does not bring to zero, so the pool would outlive the run and
    // crash the process with an unhandled error when the database is dropped.
    const emmettPool = new pg.Pool({ connectionString: dbUrl, max: POOL_SIZE });
    emmettPool.on('error', () => undefined); // idle clients of a dropped database
    const emmett = getPostgreSQLEventStore(dbUrl, { connectionOptions: { pool: emmettPool } });
    const sizes = quick ? QUICK_SIZES : FULL_SIZES;
    let castore: PostgresEventStorageAdapter | Unavailable | undefined;
    let coldStore: Store<CounterEvents> | undefined;
    const catchUpLog = filledLog(() => openStore(dbUrl, admin), sizes.catchUp, progress);
    const close = async () => {
      await catchUpLog.close().catch(() => undefined);
      await coldStore?.close().catch(() => undefined);
      if (castore !== undefined) await closeCastore(castore).catch(() => undefined);
      await emmett.close().catch(() => undefined);
      await emmettPool.end().catch(() => undefined);
      await admin.end().catch(() => undefined);
      await database.drop();
    };
    try {
      await admin`CREATE TABLE ${admin(PLAIN_TABLE)} (
        stream text NOT NULL, sequence bigint NOT NULL, type text NOT NULL, time_ms bigint NOT NULL, data text NOT NULL,
        PRIMARY KEY (stream, sequence))`;
      // Creates Emmett's schema (and the Timebox one) before anything is timed.
      await emmett.appendToStream(`setup-${randomUUID()}`, [{ type: 'Setup', data: {} }]);
      castore = await openCastore(dbUrl);
      coldStore = createPostgresStore<CounterEvents>({}, { url: dbUrl, prefix: `bench-cold-${randomUUID()}`, maxConns: 2 });
      await coldStore.ready();
      const timeboxGap = await appendGap(coldStore, 'postgres');
      const readGap = timeboxGap ?? readSideGap(coldStore.backend, 'postgres');
      if (timeboxGap === undefined) await fillColdAggregates(coldStore, sizes.cold);
      else progress(`Timebox sides not measured: ${timeboxGap}`);
      if (timeboxGap === undefined && readGap !== undefined) progress(`Timebox projections not measured: ${readGap}`);
      const notes = [
        ...('unavailable' in castore ? [`Castore not measured: ${castore.unavailable}`] : []),
        ...(timeboxGap !== undefined ? [`Timebox not measured: ${timeboxGap}.`] : []),
        ...(timeboxGap === undefined && readGap !== undefined ? [`Timebox projections not measured: ${readGap}.`] : []),
      ];
      return {
        warmups: quick ? 0 : 1,
        comparisons: postgresComparisons(
          { url: dbUrl, admin, emmett, castore, coldStore, catchUpLog, timeboxGap, readSideGap: readGap, progress },
          sizes,
        ),
        notes: [
          ...notes,
          'Every pool has 10 connections; PostgreSQL runs with fsync and synchronous_commit on.',
          `A trial of exec-many / append-latency-64 is ${sizes.ops.toLocaleString('en-US')} ops, one on each of the first ${sizes.ops.toLocaleString('en-US')} of the 10,000 aggregates (every commit waits for an fsync: longer trials would not fit the time budget).`,
          "projection-catch-up: Emmett's consumer reads its own store, filled with the same events (plus the one setup event); it stores a checkpoint per message, in one transaction per pulled batch.",
        ],
        close,
      };
    } catch (error) {
      await close();
      throw error;
    }
  },
};
