import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { AggregateId, Config, Store } from '@timebox/core';
import { runPool, runTimedPool, type Comparison, type Trial, type Unavailable, type Workload } from '../harness.js';

/** The one event every paging aggregate holds. */
export type PagingEvents = { Opened: { n: number } };

/** The list query a row pages through. */
export type Query = 'prefix' | 'status' | 'label';
export const QUERIES: readonly Query[] = ['prefix', 'status', 'label'];

const PREFIX = 'page';
const STATUS = 'open';
const LABEL = 'tier';
const VALUE = 'gold';
/** Digits of the zero-padded number in an ID, so key order is number order. */
const DIGITS = 8;

/**
 * Every aggregate matches every query: its ID is under `["page"]`, its status `open` and its label
 * `tier` = `gold`, so each full iteration reads the whole store, and its items must be exactly the
 * numbers 0 … N−1, each once.
 */
export const PAGING_CONFIG: Config<PagingEvents> = {
  indexer: (events) => events.map(() => ({ status: STATUS, labels: { [LABEL]: VALUE } })),
};

export function pagingId(n: number): AggregateId {
  return [PREFIX, String(n).padStart(DIGITS, '0')];
}

/** The number in a paging ID, or −1 for an ID that is not one. */
function numberOf(id: AggregateId): number {
  if (id.length !== 2 || id[0] !== PREFIX) return -1;
  const n = Number(id[1]);
  return Number.isInteger(n) ? n : -1;
}

/** A store the rows read, and how to release it. */
export interface PagingStore {
  readonly store: Store<PagingEvents>;
  /**
   * Fills aggregates 0 … size−1 in bulk, each exactly as one `store.appendEvents(pagingId(n), 0,
   * [{ type: 'Opened', data: { n } }])` would; absent: the fill appends through the store.
   */
  bulkFill?(size: number, progress: (line: string) => void): Promise<void>;
  /** Resolves once the backend is done with the fill's aftermath (replication, snapshots), so no row measures it. */
  settle?(): Promise<void>;
  close(): Promise<void>;
}

/** What a backend offers the paging rows. */
export interface PagingHost {
  /** A fresh, empty store with `PAGING_CONFIG`, not shared with any other `open` call. */
  open(size: number): Promise<PagingStore>;
  /** Appends in flight while filling. */
  readonly fillConcurrency: number;
  /** Why a query's rows cannot be measured on this build (they print n/a with the reason). */
  readonly gaps?: Partial<Record<Query, string>>;
}

/** A store of `size` aggregates, filled on first use (untimed) and shared by every row. */
export interface FilledStore {
  readonly size: number;
  get(): Promise<PagingStore>;
  /** Cursors of pages of 1,000 through the whole list of `query`, collected once (untimed). */
  cursors(query: Query): Promise<readonly string[]>;
  close(): Promise<void>;
}

/**
 * A store of `size` aggregates, one event each, appended `concurrency` at a time through
 * `store.appendEvents` (the same path as any writer: index rows are exactly what the backend
 * writes). The fill rate goes to `progress`.
 */
export function filledStore(host: PagingHost, size: number, progress: (line: string) => void): FilledStore {
  let filling: Promise<PagingStore> | undefined;
  const cursors = new Map<Query, Promise<string[]>>();
  const get = () =>
    (filling ??= (async () => {
      const opened = await host.open(size);
      const start = performance.now();
      let done = 0;
      if (opened.bulkFill !== undefined) await opened.bulkFill(size, progress);
      else
        await runPool(size, host.fillConcurrency, async (n) => {
          await opened.store.appendEvents(pagingId(n), 0, [{ type: 'Opened', data: { n } }]);
          if (++done % 100_000 === 0) progress(`filled ${done.toLocaleString('en-US')} of ${size.toLocaleString('en-US')}`);
        });
      const seconds = (performance.now() - start) / 1000;
      progress(
        `filled ${size.toLocaleString('en-US')} aggregates in ${seconds.toFixed(1)} s (${Math.round(size / seconds).toLocaleString('en-US')} appends/s, ${opened.bulkFill === undefined ? `${host.fillConcurrency} in flight` : 'in bulk'})`,
      );
      if (opened.settle !== undefined) {
        const settling = performance.now();
        await opened.settle();
        progress(`settled in ${((performance.now() - settling) / 1000).toFixed(1)} s`);
      }
      return opened;
    })());
  return {
    size,
    get,
    cursors(query) {
      let found = cursors.get(query);
      if (found === undefined) {
        found = (async () => {
          const { store } = await get();
          const all: string[] = [];
          let cursor: string | undefined;
          do {
            cursor = (await pageOf(store, query, 1_000, cursor)).cursor;
            if (cursor !== undefined) all.push(cursor);
          } while (cursor !== undefined);
          return all;
        })();
        cursors.set(query, found);
      }
      return found;
    },
    async close() {
      if (filling !== undefined) await (await filling).close();
    },
  };
}

/** One page of `query`'s list, with the IDs it holds. */
async function pageOf(
  store: Store<PagingEvents>,
  query: Query,
  limit: number,
  cursor: string | undefined,
): Promise<{ ids: AggregateId[]; cursor: string | undefined }> {
  const options = { limit, cursor };
  switch (query) {
    case 'prefix': {
      const page = await store.listAggregates([PREFIX], options);
      return { ids: page.items, cursor: page.cursor };
    }
    case 'status': {
      const page = await store.listAggregatesByStatus(STATUS, options);
      return { ids: page.items.map((entry) => entry.id), cursor: page.cursor };
    }
    case 'label': {
      const page = await store.listAggregatesByLabel(LABEL, VALUE, options);
      return { ids: page.items, cursor: page.cursor };
    }
  }
}

/** The iterator of `query`, yielding IDs. */
async function* iterate(store: Store<PagingEvents>, query: Query): AsyncGenerator<AggregateId> {
  switch (query) {
    case 'prefix':
      yield* store.iterateAggregates([PREFIX]);
      return;
    case 'status':
      for await (const entry of store.iterateAggregatesByStatus(STATUS)) yield entry.id;
      return;
    case 'label':
      yield* store.iterateAggregatesByLabel(LABEL, VALUE);
      return;
  }
}

const CALLS: Record<Query, string> = {
  prefix: `iterateAggregates(["${PREFIX}"])`,
  status: `iterateAggregatesByStatus("${STATUS}")`,
  label: `iterateAggregatesByLabel("${LABEL}", "${VALUE}")`,
};

/** How often the iteration samples the heap: once per default page of the iterators. */
const HEAP_SAMPLE_EVERY = 1_000;

/**
 * One full iteration of `query` over the filled store, with the iterators' default page size.
 * Counters: `heapBytes`, the most the used heap grew above where it stood when the iteration
 * started (sampled once per 1,000 items; garbage not yet collected counts, so a flat figure across
 * sizes is the point, not its value), and `maxStallMs`, the longest event-loop delay
 * (`monitorEventLoopDelay`, resolution 1 ms) in this process while it ran: on raft the members
 * (the leader among them) run in this process, so their loop is this one.
 * Checked: every number 0 … size−1 came exactly once.
 */
export function iterateWorkload(filled: FilledStore, query: Query): Workload {
  return {
    label: `${CALLS[query]} over ${filled.size.toLocaleString('en-US')}`,
    ops: filled.size,
    async prepare(): Promise<Trial> {
      const { store } = await filled.get();
      const seen = new Uint8Array(filled.size);
      let count = 0;
      let stray = 0;
      let heapGrowth = 0;
      let stallMs = 0;
      return {
        async run() {
          const delay = monitorEventLoopDelay({ resolution: 1 });
          const base = process.memoryUsage().heapUsed;
          delay.enable();
          try {
            for await (const id of iterate(store, query)) {
              const n = numberOf(id);
              if (n < 0 || n >= filled.size || seen[n] === 1) stray++;
              else seen[n] = 1;
              if (++count % HEAP_SAMPLE_EVERY === 0) heapGrowth = Math.max(heapGrowth, process.memoryUsage().heapUsed - base);
            }
            // The monitor records a delay when its 1 ms timer fires: let it fire once more, so a
            // stall at the very end (or a loop that never turned) is recorded too. Adds ~1 ms.
            await new Promise((resolve) => setTimeout(resolve, 1));
          } finally {
            delay.disable();
          }
          stallMs = delay.max / 1e6;
        },
        async verify() {
          const missing = seen.reduce((sum, flag) => sum + (flag === 1 ? 0 : 1), 0);
          if (count !== filled.size || stray > 0 || missing > 0) {
            throw new Error(
              `${CALLS[query]} yielded ${count} items for ${filled.size} aggregates: ${stray} duplicate or foreign, ${missing} missing`,
            );
          }
        },
        close: async () => undefined,
        counters: () => ({ heapBytes: heapGrowth, maxStallMs: stallMs }),
      };
    },
  };
}

/** Pages fetched per latency trial, one at a time. */
const LATENCY_PAGES = 200;
/** The page size of the latency rows: core's default `limit`. */
const LATENCY_LIMIT = 100;

/**
 * One page of 100 (core's default `limit`) of `query`, fetched `LATENCY_PAGES` times, one at a
 * time, each from a cursor spread over the whole list (cursors collected once, untimed), so
 * pages deep in the store count as much as the first. Checked: every page was full.
 */
export function pageLatencyWorkload(filled: FilledStore, query: Query): Workload {
  return {
    label: `one page of ${LATENCY_LIMIT} of ${filled.size.toLocaleString('en-US')}`,
    ops: LATENCY_PAGES,
    async prepare(): Promise<Trial> {
      const { store } = await filled.get();
      const cursors = await filled.cursors(query);
      if (cursors.length === 0) throw new Error(`no cursors through ${filled.size} aggregates`);
      const latencies: number[] = [];
      let short = 0;
      // A stride coprime with nothing in particular: consecutive pages land far apart.
      const stride = Math.max(1, Math.floor(cursors.length / 7) + 1);
      return {
        run: () =>
          runTimedPool(
            LATENCY_PAGES,
            1,
            async (i) => {
              const page = await pageOf(store, query, LATENCY_LIMIT, cursors[(i * stride) % cursors.length]);
              if (page.ids.length !== LATENCY_LIMIT) short++;
            },
            latencies,
          ),
        async verify() {
          if (short > 0) throw new Error(`${short} of ${LATENCY_PAGES} pages held fewer than ${LATENCY_LIMIT} items`);
        },
        close: async () => undefined,
        latencies: () => latencies,
      };
    },
  };
}

/**
 * The paging rows of one backend: per query, a full iteration and one page's latency, the
 * largest size as the subject and each smaller size as a baseline, so the ratio column is the
 * big store's rate ÷ the small one's and the latency ratio how much a page slowed.
 */
export function pagingComparisons(host: PagingHost, stores: readonly FilledStore[]): Comparison[] {
  const sorted = [...stores].sort((a, b) => b.size - a.size);
  const [big, ...small] = sorted as [FilledStore, ...FilledStore[]];
  const sizes = sorted.map((s) => s.size.toLocaleString('en-US')).join(' vs ');
  const gated = (query: Query, workload: Workload): Workload | Unavailable => {
    const gap = host.gaps?.[query];
    return gap === undefined ? workload : { label: workload.label, unavailable: gap };
  };
  return QUERIES.flatMap((query): Comparison[] => [
    {
      key: `page-iterate-${query}`,
      title: `full paged iteration, ${CALLS[query]}, ${sizes} aggregates`,
      kind: 'throughput',
      params: { query, sizes: sorted.map((s) => s.size).join(','), pageSize: 1_000, growthOf: big.size / (small[0]?.size ?? big.size) },
      subject: gated(query, iterateWorkload(big, query)),
      baselines: small.map((store) => gated(query, iterateWorkload(store, query))),
    },
    {
      key: `page-latency-${query}`,
      title: `one page (limit ${LATENCY_LIMIT}) of ${CALLS[query].replace('iterate', 'list')}, ${sizes} aggregates`,
      kind: 'latency',
      params: { query, sizes: sorted.map((s) => s.size).join(','), limit: LATENCY_LIMIT, pages: LATENCY_PAGES },
      subject: gated(query, pageLatencyWorkload(big, query)),
      baselines: small.map((store) => gated(query, pageLatencyWorkload(store, query))),
    },
  ]);
}
