import { describe, expect, it } from 'vitest';
import { createStore, type AggregateId, type ListPage, type ListRequest } from '@timebox/core';
import { LocalReplicator } from '../../src/local-replicator.js';
import { RaftBackend } from '../../src/raft-backend.js';
import { PAGE_CHUNK } from '../../src/state/chunked-page.js';
import { tempStates } from '../state/temp-state.js';

const states = tempStates();

/** More than two chunks' worth, not a multiple of a chunk. */
const COUNT = PAGE_CHUNK * 2 + 234;

/** A backend over a single-process replicator (reads are local: no network round trip yields for them) holding COUNT aggregates. */
async function filled() {
  const state = states.open();
  const backend = new RaftBackend({ state, replicator: new LocalReplicator(state) });
  const store = createStore<{ A: number }>(backend, {
    indexer: (events) => events.map(() => ({ status: 'open', labels: { tier: 'gold' } })),
  });
  await store.ready();
  const ids: AggregateId[] = Array.from({ length: COUNT }, (_, n) => ['p', String(n).padStart(5, '0')]);
  await Promise.all(ids.map((id, n) => store.appendEvents(id, 0, [{ type: 'A', data: n }])));
  return { state, backend, store, ids };
}

type Read = (request: ListRequest) => Promise<ListPage<unknown>>;

/** Every item of a list, chained through pages of `limit`. */
async function chained(read: Read, limit: number): Promise<unknown[]> {
  const items: unknown[] = [];
  let after: string | undefined;
  do {
    const page = await read({ limit, after });
    items.push(...page.items);
    after = page.next;
  } while (after !== undefined);
  return items;
}

/** Counts event-loop turns (check phases) until stopped. */
function turns(): { stop(): number } {
  let count = 0;
  let running = true;
  const tick = () => {
    if (!running) return;
    count++;
    setImmediate(tick);
  };
  setImmediate(tick);
  return {
    stop() {
      running = false;
      return count;
    },
  };
}

describe('raft list pages read in chunks', () => {
  it('a page larger than a chunk holds what chained small pages hold, and its cursor goes on from there', async () => {
    const { backend, store } = await filled();
    const reads: Record<string, Read> = {
      prefix: (request) => backend.listAggregates(['p'], request),
      status: (request) => backend.listAggregatesByStatus('open', request),
      label: (request) => backend.listAggregatesByLabel('tier', 'gold', request),
    };
    for (const [query, read] of Object.entries(reads)) {
      const all = await chained(read, 7);
      expect(all, query).toHaveLength(COUNT);
      const whole = await read({ limit: 10_000 });
      expect(whole.items, query).toEqual(all);
      expect(whole.next, query).toBeUndefined();
      const first = await read({ limit: PAGE_CHUNK * 2 + 1 });
      expect(first.items, query).toEqual(all.slice(0, PAGE_CHUNK * 2 + 1));
      expect(first.next, query).toBeDefined();
      const rest = await read({ limit: 10_000, after: first.next });
      expect(rest.items, query).toEqual(all.slice(PAGE_CHUNK * 2 + 1));
      expect(rest.next, query).toBeUndefined();
      // Exactly a chunk's multiple: the cursor of a full page still says whether more follow.
      const exact = await read({ limit: PAGE_CHUNK * 2 });
      expect(exact.items, query).toEqual(all.slice(0, PAGE_CHUNK * 2));
      expect((await read({ limit: 10_000, after: exact.next })).items, query).toEqual(all.slice(PAGE_CHUNK * 2));
    }
    await store.close();
  });

  it('yields to the event loop between the chunks of one page, and between the pages of an iteration over local reads', async () => {
    const { store } = await filled();
    const page = turns();
    const items = await store.listAggregates(['p'], { limit: 10_000 });
    // One turn before each of the three chunks at least: timers and I/O (heartbeats) ran in between.
    expect(page.stop()).toBeGreaterThanOrEqual(3);
    expect(items.items).toHaveLength(COUNT);

    const iteration = turns();
    let seen = 0;
    for await (const _ of store.iterateAggregatesByStatus('open', { pageSize: 100 })) seen++;
    expect(seen).toBe(COUNT);
    expect(iteration.stop()).toBeGreaterThanOrEqual(Math.ceil(COUNT / 100));
    await store.close();
  });
});
