import { createStore, ProjectionError, type ProjectionStore } from '../src/index.js';
import { FOLLOW_INTERVAL_MS } from '../src/projection.js';
import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../src/memory/index.js';

/** A memory backend whose projection storage fails its first `failures` claims, as a dropped connection would. */
function flakyBackend(failures: number): MemoryBackend {
  const backend = new MemoryBackend();
  const inner = backend.projections;
  let left = failures;
  const flaky: ProjectionStore = {
    load: (name) => inner.load(name),
    claim: async (name, holder, leaseMs) => {
      if (left-- > 0) throw new Error('connection reset');
      return inner.claim(name, holder, leaseMs);
    },
    save: (name, holder, generation, update, leaseMs) => inner.save(name, holder, generation, update, leaseMs),
    release: (name, holder) => inner.release(name, holder),
    reset: (name, checkpoint) => inner.reset(name, checkpoint),
  };
  Object.defineProperty(backend, 'projections', { value: flaky });
  return backend;
}

describe('projection runner', () => {
  it('outlives backend failures: reports each and retries with backoff', async () => {
    const store = createStore(flakyBackend(2));
    await store.appendEvents(['a'], 0, [{ type: 'E', data: {} }]);
    const reported: ProjectionError[] = [];
    const seen: number[] = [];
    const projection = store.project('survivor', (event) => void seen.push(event.position), {
      retry: { initialDelayMs: 5 },
      onError: (error) => void reported.push(error),
    });
    await projection.caughtUp({ signal: AbortSignal.timeout(10_000) });
    expect(seen).toEqual([1]);
    expect(reported).toHaveLength(2);
    expect(reported[0]).toBeInstanceOf(ProjectionError);
    expect(reported[0]!.message).toMatch(/the backend failed; retrying: connection reset/);
    await store.close();
  });

  it('once caught up, reads the log at most every FOLLOW_INTERVAL_MS, so appends arriving meanwhile come as one batch', async () => {
    const backend = new MemoryBackend();
    const reads: { at: number; end: boolean }[] = [];
    const readLog = backend.readLog.bind(backend);
    backend.readLog = async (request) => {
      const at = performance.now();
      const page = await readLog(request);
      reads.push({ at, end: page.end });
      return page;
    };
    const store = createStore(backend);
    const batches: number[] = [];
    const projection = store.project('paced', { handleBatch: (events) => void batches.push(events.length) });
    await projection.caughtUp({ signal: AbortSignal.timeout(10_000) });
    const appends = 300;
    for (let i = 0; i < appends; i++) {
      await store.appendEvents(['paced', String(i)], 0, [{ type: 'E', data: { i } }]);
      // Let the runner (and its timers) run between appends, as a steady stream of writers would.
      await new Promise((resolve) => setImmediate(resolve));
    }
    await projection.caughtUp({ signal: AbortSignal.timeout(10_000) });
    await store.close();
    expect(batches.reduce((sum, n) => sum + n, 0)).toBe(appends);
    // Every read after one that reached the end started FOLLOW_INTERVAL_MS or more after it
    // (less a millisecond of timer granularity).
    const early = reads.filter((read, i) => i > 0 && reads[i - 1]!.end && read.at - reads[i - 1]!.at < FOLLOW_INTERVAL_MS - 1);
    expect(early).toEqual([]);
    expect(batches.length).toBeLessThan(appends / 2);
  });

  it('stops its runners when the store closes and gives the hold up', async () => {
    const backend = new MemoryBackend();
    const store = createStore(backend);
    const projection = store.project('closing', () => undefined);
    await projection.caughtUp({ signal: AbortSignal.timeout(10_000) });
    expect(projection.active).toBe(true);
    await store.close();
    await expect(projection.done).resolves.toBeUndefined();
    expect(projection.active).toBe(false);
    const other = createStore(new MemoryBackend({ database: backend.database }));
    expect((await other.projectionStatus('closing')).holder).toBeUndefined();
    await other.close();
  });
});
