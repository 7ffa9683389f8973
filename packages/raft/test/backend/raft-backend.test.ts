import { describe, expect, it } from 'vitest';
import { createStore, InvalidArgumentError, StoreClosedError, type ArchiveRecord } from '@timebox/core';
import { encodeCommand, type CommandResult } from '../../src/state/commands.js';
import { LocalReplicator } from '../../src/local-replicator.js';
import { MAX_PROJECTION_NAME_BYTES } from '../../src/state/limits.js';
import { MaterializedState } from '../../src/state/materialized-state.js';
import { RaftBackend } from '../../src/raft-backend.js';
import { RaftLogUnnamedError } from '../../src/errors.js';
import type { CommittedEntry } from '../../src/node/ports.js';
import { tempStates } from '../state/temp-state.js';

const states = tempStates();

function node(dir?: string) {
  const state = states.open({}, dir);
  const replicator = new LocalReplicator(state);
  return { state, replicator };
}

describe('LocalReplicator', () => {
  it('applies the proposals of one event-loop turn in one batch, in proposal order', async () => {
    const { state, replicator } = node();
    const batches: number[][] = [];
    const apply = state.apply.bind(state);
    state.apply = (entries: readonly CommittedEntry[]) => {
      batches.push(entries.map((entry) => entry.index));
      return apply(entries);
    };
    const command = (n: number) =>
      encodeCommand({
        type: 'append',
        id: ['c'],
        expectedSequence: n,
        events: [{ type: 'A', sequence: n, timestamp: 0, data: String(n) }],
      });
    const results = await Promise.all([0, 1, 2, 3].map((n) => replicator.propose(command(n))));
    expect(results).toEqual([1, 2, 3, 4].map((position) => ({ type: 'appended', firstPosition: position, count: 1 })));
    expect(batches).toEqual([[1, 2, 3, 4]]);
    expect(state.loadEvents(['c'], 0).map((event) => event.data)).toEqual(['0', '1', '2', '3']);
    await replicator.close();
    await expect(replicator.propose(command(4))).rejects.toBeInstanceOf(StoreClosedError);
  });

  it('continues the log from the durable applied index after a restart', async () => {
    const dir = states.dir();
    const first = MaterializedState.open(dir);
    const firstReplicator = new LocalReplicator(first);
    const store = createStore(new RaftBackend({ state: first, replicator: firstReplicator, ownsNode: true }));
    await store.appendEvents(['r'], 0, [{ type: 'A', data: 1 }]);
    await store.appendEvents(['r'], 1, [{ type: 'A', data: 2 }]);
    await store.close();
    expect(first.closed).toBe(true);

    const { state, replicator } = node(dir);
    expect(state.appliedIndex()).toBe(2);
    const again = createStore(new RaftBackend({ state, replicator }));
    await again.appendEvents(['r'], 2, [{ type: 'A', data: 3 }]);
    expect((await again.getEvents(['r'])).map((event) => event.payload)).toEqual([1, 2, 3]);
    expect(state.appliedIndex()).toBe(3);
    await again.close();
    expect(state.closed).toBe(false);
    await replicator.close();
  });

  it('rejects every proposal of a batch whose apply failed, and every later one', async () => {
    const { state, replicator } = node();
    const failure = new Error('disk gone');
    state.apply = () => Promise.reject(failure);
    const command = encodeCommand({ type: 'archive', id: ['x'] });
    const outcomes = await Promise.allSettled([replicator.propose(command), replicator.propose(command)]);
    expect(outcomes.map((o) => (o.status === 'rejected' ? (o.reason as unknown) : o.value))).toEqual([failure, failure]);
    await expect(replicator.propose(command)).rejects.toBe(failure);
    await expect(replicator.ready()).rejects.toBe(failure);
  });
});

describe('RaftBackend', { timeout: 30_000 }, () => {
  it('rejects an aggregate ID too long for LMDB with InvalidArgumentError before proposing', async () => {
    const { state, replicator } = node();
    const store = createStore(new RaftBackend({ state, replicator }));
    const before = state.appliedIndex();
    await expect(store.appendEvents(['x'.repeat(2500)], 0, [{ type: 'A', data: 1 }])).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(store.putSnapshot(['y'.repeat(2500)], {}, 0)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(state.appliedIndex()).toBe(before);
    await store.close();
    await replicator.close();
  });

  it('rejects a label too long to index with InvalidArgumentError and stores nothing', async () => {
    const { state, replicator } = node();
    const store = createStore(new RaftBackend({ state, replicator }), {
      indexer: (events) => events.map(() => ({ labels: { big: 'v'.repeat(3000) } })),
    });
    await expect(store.appendEvents(['a'], 0, [{ type: 'A', data: 1 }])).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(store.getEvents(['a'])).resolves.toEqual([]);
    await store.close();
    await replicator.close();
  });

  it('hands a released record to a waiting consumer at once (woken by the apply, not by lease expiry)', async () => {
    const { state, replicator } = node();
    // Leases and rechecks far beyond the test timeout: only the wake-up can deliver in time.
    const options = { state, replicator, archiveLeaseMs: 600_000, archiveRecheckMs: 600_000 };
    const [first, second] = [createStore(new RaftBackend(options)), createStore(new RaftBackend(options))];
    await first.appendEvents(['w'], 0, [{ type: 'A', data: 1 }]);
    await first.archive(['w']);
    let release!: () => void;
    const holding = new Promise<void>((resolve) => (release = resolve));
    let taken!: () => void;
    const tookIt = new Promise<void>((resolve) => (taken = resolve));
    const failing = first.consumeArchive(async () => {
      taken();
      await holding;
      throw new Error('handler failed');
    });
    await tookIt;
    const received: ArchiveRecord[] = [];
    const waiting = second.consumeArchive((record) => void received.push(record), { signal: AbortSignal.timeout(15_000) });
    release();
    await expect(failing).rejects.toThrow('handler failed');
    await waiting;
    expect(received.map((record) => record.aggregateId)).toEqual([['w']]);
    expect(state.archiveSize()).toBe(0);
    await first.close();
    await second.close();
    await replicator.close();
  });

  it('close() rejects a waiting consumer with StoreClosedError and leaves a shared node running', async () => {
    const { state, replicator } = node();
    const backend = new RaftBackend({ state, replicator });
    const waiting = backend.consumeArchive(async () => undefined, undefined);
    const outcome = waiting.then(
      () => 'resolved',
      (error: unknown) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    await backend.close();
    expect(await outcome).toBeInstanceOf(StoreClosedError);
    const result: CommandResult = await replicator.propose(encodeCommand({ type: 'archive', id: ['x'] }));
    expect(result).toEqual({ type: 'ok' });
    await replicator.close();
  });

  it('feeds appends to a watcher after they are durable, and reports a snapshot install as a gap', async () => {
    const { state, replicator } = node();
    const backend = new RaftBackend({ state, replicator });
    const seen: string[] = [];
    const gaps: string[] = [];
    const feed = await backend.watch({
      events: (id, records) =>
        seen.push(`${id.join('/')}:${records.map((r) => `${r.sequence}/${r.position}`).join(',')}@${state.appliedIndex()}`),
      gap: (reason) => gaps.push(reason),
    });
    await backend.append({
      id: ['f'],
      expectedSequence: 0,
      events: [
        { type: 'A', sequence: 0, timestamp: 1, data: '1' },
        { type: 'A', sequence: 1, timestamp: 2, data: '2' },
      ],
    });
    await backend.append({ id: ['f'], expectedSequence: 0, events: [{ type: 'A', sequence: 0, timestamp: 3, data: '3' }] });
    expect(seen).toEqual(['f:0/1,1/2@1']);
    await state.restoreSnapshot(await state.exportSnapshot(), state.appliedIndex());
    expect(gaps).toHaveLength(1);
    await feed.close();
    await backend.append({ id: ['f'], expectedSequence: 2, events: [{ type: 'A', sequence: 2, timestamp: 4, data: '4' }] });
    expect(seen).toHaveLength(1);
    await backend.close();
    await replicator.close();
  });

  it('names the log once through ready(), the same for every backend over the state, another for another state', async () => {
    const { state, replicator } = node();
    const first = new RaftBackend({ state, replicator });
    const second = new RaftBackend({ state, replicator });
    expect(first.log.partitions).toBe(1);
    expect(() => first.log.id).toThrow(RaftLogUnnamedError);
    await Promise.all([first.ready(), second.ready()]);
    expect(first.log.id).toMatch(/^raft:[0-9a-f-]{36}$/);
    expect(second.log.id).toBe(first.log.id);
    // A log read names the log as well.
    const other = node();
    const third = new RaftBackend({ state: other.state, replicator: other.replicator });
    expect(await third.readLog({ after: [0], limit: 1 })).toEqual({ entries: [], after: [0], end: true });
    expect(third.log.id).not.toBe(first.log.id);
    await Promise.all([first.close(), second.close(), third.close()]);
    await Promise.all([replicator.close(), other.replicator.close()]);
  });

  it('refuses a malformed log read, and projection calls with bad arguments or after close', async () => {
    const { state, replicator } = node();
    const backend = new RaftBackend({ state, replicator });
    for (const request of [
      { after: [], limit: 1 },
      { after: [0, 0], limit: 1 },
      { after: [-1], limit: 1 },
      { after: [0.5], limit: 1 },
      { after: [0], limit: 0 },
      { after: [0], limit: 10_001 },
      { after: [0], limit: 1, types: 'A' },
      { after: [0], limit: 1, prefix: [1] },
    ]) {
      await expect(backend.readLog(request as never), JSON.stringify(request)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    await expect(backend.projections.claim('p', 'h', 0)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(backend.projections.claim('', 'h', 10)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(backend.projections.claim('p\uD800', 'h', 10)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(backend.projections.claim('x'.repeat(MAX_PROJECTION_NAME_BYTES + 1), 'h', 10)).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(backend.projections.save('p', 'h', -1, {}, 10)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(backend.projections.save('p', 'h', 0, { lastError: 5 as never }, 10)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(backend.projections.reset('p', 7 as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    // Nothing was proposed for the refused calls.
    expect(await backend.projections.load('p')).toBeUndefined();
    const claimed = await backend.projections.claim('x'.repeat(MAX_PROJECTION_NAME_BYTES), 'h', 10_000);
    expect(claimed).toMatchObject({ held: true, record: { holder: 'h', generation: 0 } });
    await backend.close();
    for (const call of [
      () => backend.projections.load('p'),
      () => backend.projections.claim('p', 'h', 10),
      () => backend.projections.save('p', 'h', 0, {}, 10),
      () => backend.projections.release('p', 'h'),
      () => backend.projections.reset('p', undefined),
      () => backend.readLog({ after: [0], limit: 1 }),
      () => backend.logHead(),
    ]) {
      await expect(call()).rejects.toBeInstanceOf(StoreClosedError);
    }
    await replicator.close();
  });

  it('validates its own options with typed errors', () => {
    const { state, replicator } = node();
    expect(() => new RaftBackend({ state, replicator, archiveLeaseMs: 0 })).toThrow(/archiveLeaseMs/);
    expect(() => new RaftBackend({ state, replicator, archiveRecheckMs: 1.5 })).toThrow(/archiveRecheckMs/);
    expect(() => new RaftBackend({ state, replicator: {} as never })).toThrow(/replicator/);
  });
});
