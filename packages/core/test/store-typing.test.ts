// Type-level checks, compiled by `tsc --noEmit` in the test script: executors accept stores typed
// by their own event map or untyped stores, and refuse a store typed by another map.
import { createExecutor } from '../src/index.js';
import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '../src/memory/index.js';

type Counted = { Added: { n: number } };
type Other = { Renamed: { name: string } };
const options = {
  initialState: () => ({ total: 0 }),
  appliers: { Added: (state: { total: number }, data: { n: number }) => ({ total: state.total + data.n }) },
};

describe('executor store typing', () => {
  it('accepts a store typed by the same map, or an untyped store', async () => {
    const typed = createMemoryStore<Counted>();
    const inferred = createExecutor(typed, options);
    await expect(inferred.exec(['a'], (_state, aggregator) => aggregator.raise('Added', { n: 2 }))).resolves.toEqual({ total: 2 });

    const untyped = createMemoryStore();
    const explicit = createExecutor<{ total: number }, Counted>(untyped, options);
    await expect(explicit.exec(['a'], (_state, aggregator) => aggregator.raise('Added', { n: 3 }))).resolves.toEqual({ total: 3 });

    // @ts-expect-error a store typed by another event map
    createExecutor<{ total: number }, Other>(typed, { initialState: () => ({ total: 0 }), appliers: {} });
    // Never called: it only has to fail to compile.
    const wrongPayload = () =>
      // @ts-expect-error the payload type comes from the store's map
      inferred.exec(['a'], (_state, aggregator) => aggregator.raise('Added', { n: 'three' }));
    expect(typeof wrongPayload).toBe('function');
  });
});
