import { randomUUID } from 'node:crypto';
import { createStore } from '@timebox/core';
import { MemoryBackend } from '@timebox/memory';
import { createPostgresStore } from '@timebox/postgres';
import { startLocalCluster } from '@timebox/raft';
import { createRedisStore, deleteStoreKeys } from '@timebox/redis';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { messageOf, SuiteUnavailableError, type BackendBench, type BackendSuite } from '../suite.js';
import { createThrowawayDatabase, postgresServerUrl } from '../postgres-database.js';
import { bulkFillPostgres } from './postgres-fill.js';
import { filledStore, PAGING_CONFIG, pagingComparisons, type PagingEvents, type PagingHost, type PagingStore } from './workloads.js';

/** A host and what to release when the suite ends. */
interface OpenedHost {
  readonly host: PagingHost;
  readonly notes: readonly string[];
  close(): Promise<void>;
}

const memoryHost = async (): Promise<OpenedHost> => ({
  host: {
    fillConcurrency: 64,
    async open() {
      const store = createStore<PagingEvents>(new MemoryBackend(), PAGING_CONFIG);
      await store.ready();
      return { store, close: () => store.close() };
    },
  },
  notes: ['The memory backend holds the whole store in this process: its heap holds every aggregate.'],
  close: async () => undefined,
});

/** PostgreSQL: a throwaway database for the run, a prefix per store, a pool of 32. */
async function postgresHost(progress: (line: string) => void): Promise<OpenedHost> {
  const database = await createThrowawayDatabase('timebox_paging');
  const dbUrl = new URL(database.url);
  progress(`database ${database.name} on ${postgresServerUrl()}`);
  const maxConns = 32;
  const admin = postgres(dbUrl.toString(), { max: 4, onnotice: () => undefined });
  return {
    host: {
      fillConcurrency: 256,
      async open() {
        const prefix = `paging-${randomUUID()}`;
        const store = createPostgresStore<PagingEvents>(PAGING_CONFIG, { url: dbUrl.toString(), prefix, maxConns });
        await store.ready();
        const opened: PagingStore = {
          store,
          bulkFill: (size, fillProgress) => bulkFillPostgres(admin, prefix, opened, size, fillProgress),
          close: () => store.close(),
        };
        return opened;
      },
    },
    notes: [
      "Filled in bulk: SQL statements writing 20,000 aggregates each, with the rows the backend's append statement writes (checked: a bulk-written aggregate's rows equal a store-written one's); appending 1,000,000 one by one at about 500–1,500/s on this machine would take over ten minutes.",
      'PostgreSQL with fsync and synchronous_commit on.',
      'The iteration reads through a pool of 32 connections, one page (one keyset query) at a time.',
    ],
    async close() {
      await admin.end();
      await database.drop();
    },
  };
}

/**
 * Raft: a three-member cluster in this process per store (its indexes span the whole state
 * machine, so sizes cannot share one), the store on the leader. The leader's event loop is this
 * process's, so `maxStallMs` is the leader's longest stall (and the followers', and the reader's).
 */
const raftHost = async (): Promise<OpenedHost> => ({
  host: {
    fillConcurrency: 512,
    async open() {
      // Default settings, snapshots included: the members snapshot during the fill and may while
      // the rows run; exporting the image and writing it to the WAL both go in small steps.
      const cluster = await startLocalCluster({ size: 3 });
      await cluster.ready();
      const leader = cluster.members.findIndex((member) => member?.status().role === 'leader');
      if (leader < 0) {
        await cluster.close();
        throw new Error('no leader among the members of a ready cluster');
      }
      const store = cluster.openStore<PagingEvents>(PAGING_CONFIG, leader);
      await store.ready();
      return { store, settle: () => settleCluster(cluster.members), close: () => cluster.close() };
    },
  },
  notes: [
    'Each size is its own three-member cluster in this process (WAL, LMDB and TCP per member), the store on the leader; filled with appends 512 in flight.',
    'Members run with default settings, snapshots on: each exports its image a few milliseconds at a time and writes it to its WAL in 4 MiB steps (packages/raft/bench/snapshot-stall.ts measures one export).',
    "max loop stall: the longest event-loop delay (monitorEventLoopDelay, 1 ms resolution) in this process during the iteration, which is the leader's loop (target ≤ 20 ms at 1,000,000).",
  ],
  close: async () => undefined,
});

/** How often, and for how many polls in a row, `settleCluster` looks. */
const SETTLE_POLL_MS = 100;
const SETTLE_POLLS = 5;

/**
 * Resolves once every member applied the leader's whole log and no member's snapshot index moved
 * for `SETTLE_POLLS` polls in a row: the followers' apply backlog and the snapshots a fill makes
 * due run in this process too, and would otherwise land in the first rows. Without writes no
 * further snapshot becomes due (the policy counts applied commands).
 */
async function settleCluster(
  members: readonly ({ status(): { role: string; lastIndex: number; applied: number; snapshotIndex: number } } | undefined)[],
): Promise<void> {
  let steady = 0;
  let previous = '';
  while (steady < SETTLE_POLLS) {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_POLL_MS));
    const statuses = members.map((member) => member?.status());
    const last = Math.max(...statuses.map((status) => status?.lastIndex ?? 0));
    const caughtUp = statuses.every((status) => status !== undefined && status.applied >= last);
    const shape = JSON.stringify(statuses.map((status) => [status?.applied, status?.snapshotIndex]));
    steady = caughtUp && shape === previous ? steady + 1 : 0;
    previous = shape;
  }
}

/** Redis: a prefix per store, its keys deleted at the end. Every list is a keyset page of a sorted set (`ZRANGEBYLEX`). */
async function redisHost(): Promise<OpenedHost> {
  const url = process.env.TIMEBOX_REDIS_URL || 'redis://127.0.0.1:6379';
  const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
  admin.on('error', () => undefined);
  try {
    await admin.connect();
    await admin.ping();
  } catch (error) {
    admin.disconnect();
    throw new SuiteUnavailableError(`no Redis answers at ${url} (${messageOf(error)}): start one or set TIMEBOX_REDIS_URL`);
  }
  const prefixes: string[] = [];
  return {
    host: {
      fillConcurrency: 256,
      async open() {
        const prefix = `paging-${randomUUID()}`;
        prefixes.push(prefix);
        const store = createRedisStore<PagingEvents>(PAGING_CONFIG, { url, prefix });
        await store.ready();
        return { store, close: () => store.close() };
      },
    },
    notes: ['One store (prefix) per size on the local server, no shards; filled with appends 256 in flight.'],
    async close() {
      for (const prefix of prefixes) await deleteStoreKeys(admin, { prefix });
      await admin.quit();
    },
  };
}

const HOSTS: Record<string, (progress: (line: string) => void) => Promise<OpenedHost>> = {
  memory: memoryHost,
  redis: redisHost,
  postgres: postgresHost,
  raft: raftHost,
};

/**
 * The paging suite of backend `name` over stores of `sizes` aggregates (the largest is the
 * subject of every row, the others its baselines). Run by `pnpm bench -- --large`, never by the
 * default run: filling a million aggregates takes minutes.
 */
export function pagingBench(name: string, sizes: readonly number[]): BackendBench {
  const open = HOSTS[name];
  if (open === undefined) throw new RangeError(`--large: no paging suite for backend ${JSON.stringify(name)}`);
  return {
    name,
    async open({ progress }): Promise<BackendSuite> {
      const opened = await open(progress);
      const stores = sizes.map((size) => filledStore(opened.host, size, (line) => progress(`${size.toLocaleString('en-US')}: ${line}`)));
      return {
        warmups: 0,
        comparisons: pagingComparisons(opened.host, stores),
        notes: [
          ...opened.notes,
          'Iteration rows: ratio = items/s of the largest store ÷ items/s of the smaller; other = time growth (size ratio ÷ that ratio, target ≤ 12 for 10×), heap growth during one iteration, max loop stall.',
          "Page rows: the latency ratio is one page's p50/p99/p999 in the largest store ÷ in the smaller (target: near 1).",
        ],
        async close() {
          for (const store of stores) await store.close();
          await opened.close();
        },
      };
    },
  };
}
