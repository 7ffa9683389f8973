import {
  createExecutor,
  createStore,
  MaxRetriesExceededError,
  VersionConflictError,
  type AggregateId,
  type AppendRequest,
  type AppendResult,
  type Config,
  type ExecutorOptions,
  type SnapshotCodec,
  type SnapshotRecord,
  type Store,
} from '../src/index.js';
import { describe, expect, it, vi } from 'vitest';
import { MemoryBackend, MemoryDatabase, type MemoryBackendOptions } from '../src/memory/index.js';

type CounterEvents = {
  Added: { n: number };
  Noted: { text: string };
};

interface CounterState {
  readonly total: number;
  readonly count: number;
  readonly notes: readonly string[];
}

/** A memory backend that counts rejected appends and snapshot loads. */
class CountingBackend extends MemoryBackend {
  conflicts = 0;
  appends = 0;
  snapshotLoads = 0;

  constructor(options: MemoryBackendOptions = {}) {
    super(options);
  }

  override async append(request: AppendRequest): Promise<AppendResult> {
    this.appends++;
    const result = await super.append(request);
    if (!result.ok) this.conflicts++;
    return result;
  }

  override async loadSnapshot(id: AggregateId): Promise<SnapshotRecord> {
    this.snapshotLoads++;
    return super.loadSnapshot(id);
  }
}

const options = (): ExecutorOptions<CounterState, CounterEvents> => ({
  initialState: () => ({ total: 0, count: 0, notes: [] }),
  appliers: {
    Added: (state, data) => ({ ...state, total: state.total + data.n, count: state.count + 1 }),
    Noted: (state, data) => ({ ...state, notes: [...state.notes, data.text], count: state.count + 1 }),
  },
  logger: { error: () => undefined },
});

function open(config: Config<CounterEvents> = {}, database = new MemoryDatabase()) {
  const backend = new CountingBackend({ database });
  const store: Store<CounterEvents> = createStore<CounterEvents>(backend, config);
  return { backend, store, database };
}

const ID = ['counter', '1'] as const;

async function seed(store: Store<CounterEvents>, count: number, from = 0): Promise<void> {
  await store.appendEvents(
    ID,
    from,
    Array.from({ length: count }, (_, i) => ({ type: 'Added' as const, data: { n: from + i + 1 } })),
  );
}

describe('Executor on the memory backend', () => {
  it('serializes 100 concurrent execs on one aggregate with no conflicts and no gaps', async () => {
    const { backend, store } = open();
    const executor = createExecutor(store, options());
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        executor.exec(ID, async (_state, aggregator) => {
          // Yield inside the command so unserialized execs would interleave and conflict.
          await new Promise((resolve) => setImmediate(resolve));
          aggregator.raise('Added', { n: i });
        }),
      ),
    );
    const events = await store.getEvents(ID);
    expect(events).toHaveLength(100);
    expect(events.map((e) => e.sequence)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(backend.conflicts).toBe(0);
    expect(backend.appends).toBe(100);
    // Arrival order is kept: the i-th exec raised the i-th event.
    expect(events.map((e) => (e.payload as { n: number }).n)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(results.map((s) => s.count)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(await executor.get(ID)).toMatchObject({ count: 100, total: (99 * 100) / 2 });
  });

  it('stores nothing when the command throws, rejects with its error, and keeps working', async () => {
    const { store } = open();
    const executor = createExecutor(store, options());
    await executor.exec(ID, (_s, a) => a.raise('Added', { n: 1 }));

    const failure = new Error('command refused');
    await expect(
      executor.exec(ID, (_s, a) => {
        a.raise('Added', { n: 100 });
        a.raise('Noted', { text: 'never stored' });
        throw failure;
      }),
    ).rejects.toBe(failure);
    await expect(
      executor.exec(ID, async () => {
        await Promise.resolve();
        throw new TypeError('async refusal');
      }),
    ).rejects.toThrow(TypeError);

    expect(await store.getEvents(ID)).toHaveLength(1);
    // The aborted attempt's events did not leak into the cached state.
    const state = await executor.exec(ID, (s, a) => {
      expect(s).toEqual({ total: 1, count: 1, notes: [] });
      a.raise('Added', { n: 2 });
    });
    expect(state).toEqual({ total: 3, count: 2, notes: [] });
    expect((await store.getEvents(ID)).map((e) => e.sequence)).toEqual([0, 1]);
  });

  it('runs success actions after success with the final state and the persisted events', async () => {
    const { store } = open();
    const calls: string[] = [];
    const executorAction = vi.fn(async (state: CounterState, events: readonly { type: string; sequence: number }[]) => {
      calls.push(`executor:${state.count}:${events.map((e) => `${e.type}@${e.sequence}`).join(',')}`);
    });
    const executor = createExecutor(store, { ...options(), onSuccess: executorAction });
    await executor.exec(ID, (_s, a) => a.raise('Added', { n: 1 }));
    calls.length = 0;

    const state = await executor.exec(ID, (_s, a) => {
      a.onSuccess(async (finalState, events) => {
        // Runs after the append: the events are in the store.
        const stored = await store.getEvents(ID, 1);
        expect(stored.map((e) => e.sequence)).toEqual(events.map((e) => e.sequence));
        calls.push(`aggregator:${finalState.count}:${events.map((e) => `${e.type}@${e.sequence}`).join(',')}`);
      });
      a.raise('Added', { n: 2 });
      a.raise('Noted', { text: 'hi' });
      expect(calls).toEqual([]);
    });
    expect(state).toEqual({ total: 3, count: 3, notes: ['hi'] });
    expect(calls).toEqual(['aggregator:3:Added@1,Noted@2', 'executor:3:Added@1,Noted@2']);
    expect(executorAction).toHaveBeenCalledTimes(2);
    const events = executorAction.mock.calls[1]?.[1];
    expect(events?.map((e) => e.sequence)).toEqual([1, 2]);
  });

  it('does not run success actions when the command fails', async () => {
    const { store } = open();
    const onSuccess = vi.fn();
    const executor = createExecutor(store, { ...options(), onSuccess });
    const local = vi.fn();
    await expect(
      executor.exec(ID, (_s, a) => {
        a.onSuccess(local);
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    expect(onSuccess).not.toHaveBeenCalled();
    expect(local).not.toHaveBeenCalled();
  });

  it('logs a throwing success action and still resolves', async () => {
    const { store } = open();
    const logger = { error: vi.fn() };
    const actionError = new Error('action failed');
    const after = vi.fn();
    const executor = createExecutor(store, {
      ...options(),
      logger,
      onSuccess: () => {
        throw actionError;
      },
    });
    const state = await executor.exec(ID, (_s, a) => {
      a.onSuccess(async () => {
        throw new Error('aggregator action failed');
      });
      a.raise('Added', { n: 5 });
    });
    expect(state.total).toBe(5);
    expect(await store.getEvents(ID)).toHaveLength(1);
    expect(logger.error).toHaveBeenCalledTimes(2);
    expect(logger.error.mock.calls[0]?.[0]).toContain('counter:1');
    expect(logger.error.mock.calls[0]?.[1]).toEqual(new Error('aggregator action failed'));
    expect(logger.error.mock.calls[1]?.[1]).toBe(actionError);
    // The executor is unharmed.
    await executor.exec(ID, (_s, a) => {
      a.onSuccess(after);
      a.raise('Added', { n: 1 });
    });
    expect(after).toHaveBeenCalledOnce();
  });

  describe('opportunistic snapshots', () => {
    it('a cold executor saves a snapshot when it loads trailing events and none exists', async () => {
      const { store } = open();
      await seed(store, 3);
      expect((await store.getSnapshot(ID)).value).toBeUndefined();

      const executor = createExecutor(store, options());
      await executor.exec(ID, (s, a) => {
        expect(s).toEqual({ total: 6, count: 3, notes: [] });
        a.raise('Noted', { text: 'after' });
      });
      const snapshot = await store.getSnapshot<CounterState>(ID);
      expect(snapshot.value).toEqual({ total: 6, count: 3, notes: [] });
      expect(snapshot.nextSequence).toBe(3);
      expect(snapshot.events.map((e) => e.sequence)).toEqual([3]);
    });

    it('loading an aggregate with no events saves no snapshot', async () => {
      const { store } = open();
      const executor = createExecutor(store, options());
      await executor.exec(ID, (_s, a) => a.raise('Added', { n: 1 }));
      expect((await store.getSnapshot(ID)).value).toBeUndefined();
    });

    it('does not refresh a snapshot while the trailing events are below snapshotRatio', async () => {
      const { store } = open({ snapshotRatio: 1000 });
      await seed(store, 2);
      await store.putSnapshot(ID, { total: 3, count: 2, notes: [] }, 2);
      await seed(store, 3, 2);

      const executor = createExecutor(store, options());
      const state = await executor.exec(ID, (_s, a) => a.raise('Noted', { text: 'x' }));
      expect(state).toEqual({ total: 3 + 3 + 4 + 5, count: 6, notes: ['x'] });
      const snapshot = await store.getSnapshot(ID);
      expect(snapshot.nextSequence).toBe(2);
      expect(snapshot.events).toHaveLength(4);
    });

    it('refreshes the snapshot when the ratio is exceeded (snapshotRatio 0)', async () => {
      const { store } = open({ snapshotRatio: 0 });
      await seed(store, 2);
      await store.putSnapshot(ID, { total: 3, count: 2, notes: [] }, 2);
      await seed(store, 3, 2);

      const executor = createExecutor(store, options());
      await executor.exec(ID, (_s, a) => a.raise('Noted', { text: 'x' }));
      const snapshot = await store.getSnapshot<CounterState>(ID);
      expect(snapshot.nextSequence).toBe(5);
      expect(snapshot.value).toEqual({ total: 15, count: 5, notes: [] });
      expect(snapshot.events.map((e) => e.sequence)).toEqual([5]);
    });

    it('uses the snapshot when loading: the events it covers are not replayed', async () => {
      const { store } = open();
      await seed(store, 2);
      // A snapshot that disagrees with the events proves which one the executor read.
      await store.putSnapshot(ID, { total: 1000, count: 2, notes: ['from snapshot'] }, 2);
      const executor = createExecutor(store, options());
      expect(await executor.get(ID)).toEqual({ total: 1000, count: 2, notes: ['from snapshot'] });
    });
  });

  it('uses a custom snapshot codec for both saving and loading', async () => {
    type SetState = { readonly skus: Set<string> };
    type SkuEvents = { Added: { sku: string } };
    const encode = vi.fn((state: SetState) => JSON.stringify({ v: 2, skus: [...state.skus].sort() }));
    const decode = vi.fn((data: string) => {
      const parsed = JSON.parse(data) as { v: number; skus: string[] };
      expect(parsed.v).toBe(2);
      return { skus: new Set(parsed.skus) };
    });
    const codec: SnapshotCodec<SetState> = { encode, decode };
    const database = new MemoryDatabase();
    const store = createStore<SkuEvents>(new MemoryBackend({ database }));
    const setOptions: ExecutorOptions<SetState, SkuEvents> = {
      initialState: () => ({ skus: new Set() }),
      appliers: { Added: (state, data) => ({ skus: new Set([...state.skus, data.sku]) }) },
      snapshotCodec: codec,
    };
    const writer = createExecutor(store, setOptions);
    await writer.exec(['cart'], (_s, a) => {
      a.raise('Added', { sku: 'b' });
      a.raise('Added', { sku: 'a' });
    });
    await writer.saveSnapshot(['cart']);
    expect(encode).toHaveBeenCalledTimes(1);
    const stored = await store.getSnapshot(['cart']);
    expect(stored.value).toEqual({ v: 2, skus: ['a', 'b'] });
    expect(stored.nextSequence).toBe(2);

    const reader = createExecutor(createStore<SkuEvents>(new MemoryBackend({ database })), setOptions);
    const state = await reader.get(['cart']);
    expect(decode).toHaveBeenCalledTimes(1);
    expect(state.skus).toBeInstanceOf(Set);
    expect([...state.skus].sort()).toEqual(['a', 'b']);
    const after = await reader.exec(['cart'], (_s, a) => a.raise('Added', { sku: 'c' }));
    expect([...after.skus].sort()).toEqual(['a', 'b', 'c']);
  });

  it('get() catches up with events appended through another store', async () => {
    const database = new MemoryDatabase();
    const { store, backend } = open({}, database);
    const other = open({}, database).store;
    const executor = createExecutor(store, options());
    await executor.exec(ID, (_s, a) => a.raise('Added', { n: 1 }));
    expect(await executor.get(ID)).toMatchObject({ total: 1, count: 1 });

    await other.appendEvents(ID, 1, [
      { type: 'Added', data: { n: 10 } },
      { type: 'Noted', data: { text: 'elsewhere' } },
    ]);
    expect(await executor.get(ID)).toEqual({ total: 11, count: 3, notes: ['elsewhere'] });
    // And the next exec starts from the caught-up state without a conflict.
    await executor.exec(ID, (s, a) => {
      expect(s.count).toBe(3);
      a.raise('Added', { n: 1 });
    });
    expect(backend.conflicts).toBe(0);
  });

  it('rejects with MaxRetriesExceededError when another writer always wins', async () => {
    const database = new MemoryDatabase();
    const { store, backend } = open({ maxRetries: 2 }, database);
    const other = open({}, database).store;
    const executor = createExecutor(store, options());
    let attempts = 0;
    const promise = executor.exec(ID, async (_s, a) => {
      attempts++;
      const next = (await other.getEvents(ID)).length;
      await other.appendEvents(ID, next, [{ type: 'Noted', data: { text: `winner ${attempts}` } }]);
      a.raise('Added', { n: 1 });
    });
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MaxRetriesExceededError);
    expect((error as MaxRetriesExceededError).retries).toBe(2);
    expect((error as MaxRetriesExceededError).aggregateId).toEqual(ID);
    expect((error as MaxRetriesExceededError).cause).toBeInstanceOf(VersionConflictError);
    expect(attempts).toBe(3);
    expect(backend.conflicts).toBe(3);
    const events = await store.getEvents(ID);
    expect(events.map((e) => e.type)).toEqual(['Noted', 'Noted', 'Noted']);
    expect(events.map((e) => e.sequence)).toEqual([0, 1, 2]);
  });

  it('retries a conflict from another process and converges', async () => {
    const database = new MemoryDatabase();
    const a = open({}, database);
    const b = open({}, database);
    const execA = createExecutor(a.store, options());
    const execB = createExecutor(b.store, options());
    await execA.exec(ID, (_s, agg) => agg.raise('Added', { n: 1 }));
    await execB.get(ID);
    await execA.exec(ID, (_s, agg) => agg.raise('Added', { n: 2 }));
    let attempts = 0;
    const state = await execB.exec(ID, (s, agg) => {
      attempts++;
      agg.raise('Added', { n: s.total * 10 });
    });
    expect(attempts).toBe(2);
    expect(b.backend.conflicts).toBe(1);
    expect(state).toEqual({ total: 33, count: 3, notes: [] });
    expect((await a.store.getEvents(ID)).map((e) => e.sequence)).toEqual([0, 1, 2]);
  });

  it('with trimEvents, saveSnapshot trims and later execs continue the sequences', async () => {
    const { store } = open({ trimEvents: true });
    const executor = createExecutor(store, options());
    for (let i = 1; i <= 4; i++) await executor.exec(ID, (_s, a) => a.raise('Added', { n: i }));
    await executor.saveSnapshot(ID);

    expect(await store.getEvents(ID)).toEqual([]);
    const snapshot = await store.getSnapshot<CounterState>(ID);
    expect(snapshot.nextSequence).toBe(4);
    expect(snapshot.value).toEqual({ total: 10, count: 4, notes: [] });

    await executor.exec(ID, (_s, a) => a.raise('Added', { n: 5 }));
    expect((await store.getEvents(ID)).map((e) => e.sequence)).toEqual([4]);
    expect((await store.getEvents(ID, 0))[0]?.sequence).toBe(4);

    // A cold executor resumes from the snapshot and goes on numbering.
    const cold = createExecutor(store, options());
    const state = await cold.exec(ID, (_s, a) => a.raise('Added', { n: 6 }));
    expect(state).toEqual({ total: 21, count: 6, notes: [] });
    expect((await store.getEvents(ID)).map((e) => e.sequence)).toEqual([4, 5]);
    await expect(store.appendEvents(ID, 4, [{ type: 'Added', data: { n: 0 } }])).rejects.toBeInstanceOf(VersionConflictError);
  });

  it('evict() forces a reload from the store', async () => {
    const { store, backend } = open();
    const executor = createExecutor(store, options());
    await executor.exec(ID, (_s, a) => a.raise('Added', { n: 1 }));
    expect(executor.cachedCount).toBe(1);
    const loads = backend.snapshotLoads;

    await executor.exec(ID, (_s, a) => a.raise('Added', { n: 1 }));
    expect(backend.snapshotLoads).toBe(loads);

    // Written behind the executor's back; without a reload the next exec would conflict.
    await store.appendEvents(ID, 2, [{ type: 'Noted', data: { text: 'behind' } }]);
    executor.evict(ID);
    expect(executor.cachedCount).toBe(0);
    const state = await executor.exec(ID, (s, a) => {
      expect(s.notes).toEqual(['behind']);
      a.raise('Added', { n: 1 });
    });
    expect(backend.snapshotLoads).toBe(loads + 1);
    expect(backend.conflicts).toBe(0);
    expect(state).toEqual({ total: 3, count: 4, notes: ['behind'] });
  });

  it('converges when the winner of a conflict trimmed its events away', async () => {
    const database = new MemoryDatabase();
    const slow = open({}, database);
    const fast = open({ trimEvents: true }, database);
    const slowExec = createExecutor(slow.store, options());
    const fastExec = createExecutor(fast.store, options());

    await slowExec.exec(ID, (_s, a) => a.raise('Added', { n: 1 }));
    await fastExec.exec(ID, (_s, a) => {
      a.raise('Added', { n: 2 });
      a.raise('Noted', { text: 'fast' });
    });
    await fastExec.saveSnapshot(ID);
    expect(await fast.store.getEvents(ID)).toEqual([]);

    let attempts = 0;
    const state = await slowExec.exec(ID, (s, a) => {
      attempts++;
      a.raise('Added', { n: s.count });
    });
    expect(slow.backend.conflicts).toBe(1);
    expect(attempts).toBe(2);
    expect(state).toEqual({ total: 1 + 2 + 3, count: 4, notes: ['fast'] });
    const events = await slow.store.getEvents(ID);
    expect(events.map((e) => e.sequence)).toEqual([3]);
    expect(await fastExec.get(ID)).toEqual(state);
  });

  it('get() sees events another process appended and then trimmed away, whatever its own config', async () => {
    const database = new MemoryDatabase();
    const reader = open({}, database); // does not trim itself
    const writer = open({ trimEvents: true }, database);
    const readerExec = createExecutor(reader.store, options());
    const writerExec = createExecutor(writer.store, options());
    await readerExec.exec(ID, (_s, a) => a.raise('Added', { n: 1 }));
    expect(await readerExec.get(ID)).toMatchObject({ total: 1, count: 1 });

    await writerExec.exec(ID, (_s, a) => a.raise('Added', { n: 2 }));
    await writerExec.saveSnapshot(ID);
    expect(await writer.store.getEvents(ID)).toEqual([]);

    // Every event from the reader's cached position on is gone: only the snapshot tells.
    expect(await readerExec.get(ID)).toEqual({ total: 3, count: 2, notes: [] });
    // A command that raises nothing is re-run on the caught-up state, not answered from the cache.
    const seen: number[] = [];
    await readerExec.exec(ID, (state) => {
      seen.push(state.total);
    });
    expect(seen.at(-1)).toBe(3);
  });

  it('get() of a cached empty aggregate sees a snapshot another process left with no events', async () => {
    const database = new MemoryDatabase();
    const reader = open({}, database);
    const writer = open({ trimEvents: true }, database);
    const readerExec = createExecutor(reader.store, options());
    const writerExec = createExecutor(writer.store, options());
    expect(await readerExec.get(ID)).toEqual({ total: 0, count: 0, notes: [] });
    await writerExec.exec(ID, (_s, a) => a.raise('Added', { n: 5 }));
    await writerExec.saveSnapshot(ID);
    expect(await readerExec.get(ID)).toEqual({ total: 5, count: 1, notes: [] });
  });

  it('converges when the winner trimmed only part of its events', async () => {
    const database = new MemoryDatabase();
    const slow = open({}, database);
    const fast = open({ trimEvents: true }, database);
    const slowExec = createExecutor(slow.store, options());
    const fastExec = createExecutor(fast.store, options());
    await slowExec.exec(ID, (_s, a) => a.raise('Added', { n: 1 }));
    await fastExec.exec(ID, (_s, a) => a.raise('Added', { n: 2 }));
    await fastExec.saveSnapshot(ID);
    await fastExec.exec(ID, (_s, a) => a.raise('Added', { n: 3 }));

    const state = await slowExec.exec(ID, (_s, a) => a.raise('Noted', { text: 'slow' }));
    expect(state).toEqual({ total: 6, count: 4, notes: ['slow'] });
    expect(slow.backend.conflicts).toBe(1);
    expect((await slow.store.getEvents(ID)).map((e) => e.sequence)).toEqual([2, 3]);
  });
});
