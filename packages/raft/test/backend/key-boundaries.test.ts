import { createStore, encodeAggregateId, InvalidArgumentError, InvalidCursorError, type Store } from '@timebox/core';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalReplicator } from '../../src/local-replicator.js';
import { RaftBackend } from '../../src/raft-backend.js';
import { MAX_KEY_BYTES } from '../../src/state/keys.js';
import { MAX_AGGREGATE_ID_BYTES } from '../../src/state/limits.js';
import { tempStates } from '../state/temp-state.js';

const states = tempStates();
const backends: RaftBackend[] = [];

afterEach(async () => {
  for (const backend of backends.splice(0)) await backend.close();
});

// Index keys: tag (1), each string UTF-8 + a 2-byte terminator, then the entry time (8) and/or the
// aggregate number (8). These are the longest a status and a label value can be.
const LONGEST_STATUS = 's'.repeat(MAX_KEY_BYTES - 1 - 2 - 16);
const LONGEST_OWNER = (last: string) => 'v'.repeat(MAX_KEY_BYTES - 1 - ('owner'.length + 2) - 2 - 8 - 1) + last;

/** A single-part ID whose encoding takes exactly `bytes` bytes. */
function idOfBytes(bytes: number, fill = 'x'): string[] {
  const overhead = Buffer.byteLength(encodeAggregateId([fill]), 'utf8') - 1;
  const id = [fill.repeat(bytes - overhead)];
  expect(Buffer.byteLength(encodeAggregateId(id), 'utf8')).toBe(bytes);
  return id;
}

function open(indexer?: (events: readonly unknown[]) => { status?: string; labels?: Record<string, string> }[]): {
  store: Store;
  backend: RaftBackend;
} {
  const state = states.open();
  const backend = new RaftBackend({ state, replicator: new LocalReplicator(state), ownsNode: true });
  backends.push(backend);
  return { store: createStore(backend, indexer === undefined ? {} : { indexer }), backend };
}

/** Every item of a paged query, one item per page. */
async function allPages<T>(page: (cursor: string | undefined) => Promise<{ items: T[]; cursor?: string | undefined }>): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const next = await page(cursor);
    items.push(...next.items);
    cursor = next.cursor;
  } while (cursor !== undefined);
  return items;
}

describe('keys right at the storage limit', () => {
  it('IDs of the longest lengths are listed by themselves as prefix and with their children, page by page, and read back', async () => {
    const { store } = open();
    await store.ready();
    const longest = idOfBytes(MAX_AGGREGATE_ID_BYTES);
    const withEmptyChild = idOfBytes(MAX_AGGREGATE_ID_BYTES - 1, 'w');
    const withChild = idOfBytes(MAX_AGGREGATE_ID_BYTES - 2, 'c');
    // Children of the longest length: the prefix, ':' and one more part.
    const families = [[longest], [withEmptyChild, [...withEmptyChild, '']], [withChild, [...withChild, 'y']]];
    for (const id of families.flat()) {
      expect(Buffer.byteLength(encodeAggregateId(id), 'utf8')).toBeLessThanOrEqual(MAX_AGGREGATE_ID_BYTES);
      await store.appendEvents(id, 0, [{ type: 'Opened', data: {} }]);
    }
    for (const family of families) {
      const prefix = family[0]!;
      expect(await store.listAggregates(prefix)).toEqual(family);
      expect(await allPages((cursor) => store.listAggregates(prefix, { limit: 1, cursor }))).toEqual(family);
      for (const id of family) {
        expect(await store.getEvents(id)).toHaveLength(1);
        expect(await store.getAggregateStatus(id)).toBe('');
      }
    }
    const tooLong = idOfBytes(MAX_AGGREGATE_ID_BYTES + 1);
    await expect(store.appendEvents(tooLong, 0, [{ type: 'Opened', data: {} }])).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(store.listAggregates(tooLong)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('a status of the longest length is listed page by page', async () => {
    const { store } = open((events) => events.map(() => ({ status: LONGEST_STATUS })));
    await store.ready();
    for (const n of [1, 2, 3]) await store.appendEvents(['acct', String(n)], 0, [{ type: 'Opened', data: {} }]);
    const listed = await allPages((cursor) => store.listAggregatesByStatus(LONGEST_STATUS, { limit: 1, cursor }));
    expect(listed.map((entry) => entry.id)).toEqual([
      ['acct', '1'],
      ['acct', '2'],
      ['acct', '3'],
    ]);
    await expect(store.listAggregatesByStatus(`${LONGEST_STATUS}s`)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('label values of the longest length are listed page by page, and their holders too', async () => {
    const owners = [LONGEST_OWNER('a'), LONGEST_OWNER('b')];
    const { store } = open((events) =>
      events.map((event) => ({ labels: { owner: owners[Number((event as { aggregateId: string[] }).aggregateId[1]) % 2]! } })),
    );
    await store.ready();
    for (const n of [0, 1, 2, 3]) await store.appendEvents(['acct', String(n)], 0, [{ type: 'Opened', data: { n } }]);
    expect(await allPages((cursor) => store.listLabelValues('owner', { limit: 1, cursor }))).toEqual(owners);
    const holders = await allPages((cursor) => store.listAggregatesByLabel('owner', owners[0]!, { limit: 1, cursor }));
    expect(holders).toEqual([
      ['acct', '0'],
      ['acct', '2'],
    ]);
    await expect(store.listAggregatesByLabel('owner', `${owners[0]!}v`)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('a continuation naming a key longer than any stored one is refused with InvalidCursorError, and the member goes on', async () => {
    const { store, backend } = open((events) => events.map(() => ({ status: 'open', labels: { owner: 'ann' } })));
    await store.ready();
    for (const n of [1, 2]) await store.appendEvents(['acct', String(n)], 0, [{ type: 'Opened', data: {} }]);
    const first = await backend.listAggregatesByStatus('open', { limit: 1 });
    expect(first.next).toBeDefined();
    const tooLong = first.next! + 'aa'.repeat(MAX_KEY_BYTES);
    await expect(backend.listAggregatesByStatus('open', { limit: 1, after: tooLong })).rejects.toBeInstanceOf(InvalidCursorError);
    const byLabel = await backend.listAggregatesByLabel('owner', 'ann', { limit: 1 });
    await expect(
      backend.listAggregatesByLabel('owner', 'ann', { limit: 1, after: byLabel.next! + 'aa'.repeat(MAX_KEY_BYTES) }),
    ).rejects.toBeInstanceOf(InvalidCursorError);
    const ids = await backend.listAggregates(['acct'], { limit: 1 });
    await expect(backend.listAggregates(['acct'], { limit: 1, after: ids.next! + 'aa'.repeat(MAX_KEY_BYTES) })).rejects.toBeInstanceOf(
      InvalidCursorError,
    );
    await expect(backend.listLabelValues('owner', { limit: 1, after: '61'.repeat(MAX_KEY_BYTES) })).rejects.toBeInstanceOf(
      InvalidCursorError,
    );
    // Still serving.
    const second = await backend.listAggregatesByStatus('open', { limit: 1, after: first.next });
    expect(second.items.map((entry) => entry.id)).toEqual([['acct', '2']]);
  });
});
