import { createStore, InvalidArgumentError, type Store } from '@timebox/core';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalReplicator } from '../../src/local-replicator.js';
import { MAX_KEY_BYTES } from '../../src/state/keys.js';
import { RaftBackend } from '../../src/raft-backend.js';
import { tempStates } from '../state/temp-state.js';

const states = tempStates();
const backends: RaftBackend[] = [];

afterEach(async () => {
  for (const backend of backends.splice(0)) await backend.close();
});

// Longer than any key LMDB takes (1978 bytes): each of these, used as a key, made LMDB throw a plain Error.
const HUGE = 'k'.repeat(MAX_KEY_BYTES + 100);

/** A store over a real LMDB state, with one indexed aggregate in it. */
async function storeWithData(): Promise<{ store: Store; backend: RaftBackend }> {
  const state = states.open();
  const replicator = new LocalReplicator(state);
  const backend = new RaftBackend({ state, replicator, ownsNode: true });
  backends.push(backend);
  const store = createStore(backend, { indexer: (events) => events.map(() => ({ status: 'open', labels: { owner: 'ann' } })) });
  await store.ready();
  await store.appendEvents(['acct', '1'], 0, [{ type: 'Opened', data: {} }]);
  return { store, backend };
}

describe('keys over the storage limit, on the read paths', () => {
  const queries: [string, (store: Store, backend: RaftBackend) => Promise<unknown>, string][] = [
    ['listAggregates with a huge prefix', (store) => store.listAggregates(['acct', HUGE]), 'aggregate ID prefix'],
    ['listAggregatesByLabel with a huge value', (store) => store.listAggregatesByLabel('owner', HUGE), 'index label'],
    ['listAggregatesByLabel with a huge label', (store) => store.listAggregatesByLabel(HUGE, 'ann'), 'index label'],
    ['listLabelValues with a huge label', (store) => store.listLabelValues(HUGE), 'label name'],
    ['listAggregatesByStatus with a huge status', (store) => store.listAggregatesByStatus(HUGE), 'index status'],
    ['getAggregateStatus with a huge ID', (store) => store.getAggregateStatus(['acct', HUGE]), 'aggregate ID'],
    ['getEvents with a huge ID', (store) => store.getEvents(['acct', HUGE]), 'aggregate ID'],
    ['loadSnapshot with a huge ID', (_store, backend) => backend.loadSnapshot(['acct', HUGE]), 'aggregate ID'],
    ['a projection read with a huge name', (_store, backend) => backend.projections.load(HUGE), 'projection name'],
  ];

  it.each(queries)('%s: a typed error naming the limit; the state still serves other calls', async (_name, query, field) => {
    const { store, backend } = await storeWithData();
    const error = await query(store, backend).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).code).toBe('INVALID_ARGUMENT');
    expect((error as Error).message).toContain(field);
    expect((error as Error).message).toMatch(/1977|1978/);
    // The same member answers the ordinary calls afterwards, reads and writes.
    expect(await store.listAggregates(['acct'])).toEqual([['acct', '1']]);
    expect(await store.listAggregatesByLabel('owner', 'ann')).toEqual([['acct', '1']]);
    expect(await store.listLabelValues('owner')).toEqual(['ann']);
    expect((await store.listAggregatesByStatus('open')).map((entry) => entry.id)).toEqual([['acct', '1']]);
    expect(await store.getAggregateStatus(['acct', '1'])).toBe('open');
    await store.appendEvents(['acct', '1'], 1, [{ type: 'Deposited', data: { amount: 5 } }]);
    expect((await store.getEvents(['acct', '1'])).map((event) => event.type)).toEqual(['Opened', 'Deposited']);
  });

  it('inputs just within the limit are answered normally (empty, since nothing is stored under them)', async () => {
    const { store } = await storeWithData();
    // The longest status and label value the index can hold: 1 tag + (text + 2) + 16 / + 8 key bytes.
    const status = 's'.repeat(MAX_KEY_BYTES - 1 - 2 - 16);
    expect(await store.listAggregatesByStatus(status)).toEqual([]);
    await expect(store.listAggregatesByStatus(`${status}s`)).rejects.toBeInstanceOf(InvalidArgumentError);
    const value = 'v'.repeat(MAX_KEY_BYTES - 1 - 7 - 2 - 8);
    expect(await store.listAggregatesByLabel('owner', value)).toEqual([]);
    await expect(store.listAggregatesByLabel('owner', `${value}v`)).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
