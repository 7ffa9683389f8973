/**
 * Child process of the memory workload: measures how much resident memory holding 10,000
 * counter projections costs one process. Run by `rss/workload.ts`, never by hand:
 *
 *   node --expose-gc --import tsx src/rss/child.ts '{"kind":"memory","count":10000,…}'
 *
 * It reads RSS (and heap) after a full GC, fills the cache (one `executor.get` per aggregate,
 * so each projection is an aggregate's initial state), GCs again and prints the growth as
 * one JSON line on stdout. Everything the process needs before the fill (modules, the store and
 * its connections) is loaded first, so the growth is the projections and what filling them
 * left resident.
 */
import { createMemoryStore } from '@timebox/memory';
import { createPostgresStore } from '@timebox/postgres';
import { createRedisStore } from '@timebox/redis';
import type { AggregateId, Store } from '@timebox/core';
import { CommandHandler, getInMemoryEventStore } from '@event-driven-io/emmett';
import { runPool } from '../harness.js';
import { counterIds, createCounterExecutor, increment, type CounterEvents } from '../workloads/counter.js';

export interface ChildConfig {
  /** `plain`: the baseline, a Map of the same states as plain objects, no store. */
  /** `emmett-memory`: Emmett's in-memory event store holding the same streams (its handler keeps no cache). */
  readonly kind: 'memory' | 'redis' | 'postgres' | 'plain' | 'emmett-memory';
  readonly count: number;
  readonly concurrency: number;
  readonly url?: string;
  readonly prefix?: string;
}

export interface ChildResult {
  readonly rssBytes: number;
  readonly heapBytes: number;
  readonly cached: number;
}

function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  gc();
  gc();
}

function openStore(config: ChildConfig): Store<CounterEvents> {
  switch (config.kind) {
    case 'memory':
      return createMemoryStore<CounterEvents>();
    case 'redis':
      return createRedisStore<CounterEvents>({}, { url: config.url as string, prefix: config.prefix as string });
    case 'postgres':
      return createPostgresStore<CounterEvents>({}, { url: config.url, prefix: config.prefix as string, maxConns: 10 });
    default:
      throw new Error(`no store for ${config.kind}`);
  }
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
  const ids = counterIds(config.count);
  let result: ChildResult;
  if (config.kind === 'plain') {
    // The least a process holding these states could keep: one object per aggregate, keyed by
    // the same encoded ID string the cache uses.
    collect();
    const before = process.memoryUsage();
    const states = new Map<string, { count: number }>();
    for (const id of ids) states.set(id.join(':'), { count: 0 });
    collect();
    const after = process.memoryUsage();
    result = { rssBytes: after.rss - before.rss, heapBytes: after.heapUsed - before.heapUsed, cached: states.size };
  } else if (config.kind === 'emmett-memory') {
    const events = getInMemoryEventStore();
    const handle = CommandHandler<{ count: number }, { type: 'Incremented'; data: { by: number } }>({
      evolve: (state, event) => ({ count: state.count + event.data.by }),
      initialState: () => ({ count: 0 }),
    });
    const command = () => ({ type: 'Incremented' as const, data: { by: 1 } });
    await runPool(256, config.concurrency, (i) => handle(events, `warm-${i % 64}`, command));
    collect();
    const before = process.memoryUsage();
    await runPool(ids.length, config.concurrency, (n) => handle(events, ids[n]?.join(':') as string, command));
    collect();
    const after = process.memoryUsage();
    let streams = 0;
    for (const id of ids) if ((await events.readStream(id.join(':'))).events.length === 1) streams++;
    result = { rssBytes: after.rss - before.rss, heapBytes: after.heapUsed - before.heapUsed, cached: streams };
  } else {
    const store = openStore(config);
    await store.ready();
    // Warm the code paths (and connections) on other aggregates, so the fill grows only data.
    const warm = createCounterExecutor(store, 64);
    await runPool(256, config.concurrency, (i) => warm.exec(['warm', String(i % 64)], increment));
    collect();
    const before = process.memoryUsage();
    const executor = createCounterExecutor(store, config.count);
    // Loading fills the cache exactly as execs would (one projection per aggregate) without
    // writing 10,000 events through a disk-bound server first.
    await runPool(ids.length, config.concurrency, (n) => executor.get(ids[n] as AggregateId));
    collect();
    const after = process.memoryUsage();
    result = { rssBytes: after.rss - before.rss, heapBytes: after.heapUsed - before.heapUsed, cached: executor.cachedCount };
    await store.close();
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`rss child failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
