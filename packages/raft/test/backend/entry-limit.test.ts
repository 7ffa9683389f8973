import { ConfigError, createStore, InvalidArgumentError } from '@timebox/core';
import { afterEach, describe, expect, it } from 'vitest';
import { RaftEntryTooLargeError } from '../../src/errors.js';
import { LocalReplicator } from '../../src/local-replicator.js';
import { RaftBackend } from '../../src/raft-backend.js';
import { tempStates } from '../state/temp-state.js';

const states = tempStates();
const backends: RaftBackend[] = [];

afterEach(async () => {
  for (const backend of backends.splice(0)) await backend.close();
});

const LIMIT = 64 << 10;

function backend(maxEntryBytes?: number): RaftBackend {
  const state = states.open();
  const made = new RaftBackend({ state, replicator: new LocalReplicator(state), ownsNode: true, maxEntryBytes });
  backends.push(made);
  return made;
}

describe('maxEntryBytes on the backend', () => {
  it('refuses an append, a snapshot and a projection checkpoint over the limit before proposing, and the store stays as it was', async () => {
    const raft = backend(LIMIT);
    const store = createStore(raft);
    await store.ready();
    await store.appendEvents(['a'], 0, [{ type: 'Small', data: { s: 'x'.repeat(LIMIT / 2) } }]);

    const append = await store.appendEvents(['a'], 1, [{ type: 'Big', data: { s: 'x'.repeat(LIMIT) } }]).catch((e: unknown) => e);
    expect(append).toBeInstanceOf(RaftEntryTooLargeError);
    expect(append).toBeInstanceOf(InvalidArgumentError);
    expect((append as RaftEntryTooLargeError).limit).toBe(LIMIT);
    expect((append as RaftEntryTooLargeError).bytes).toBeGreaterThan(LIMIT);
    // Its payload alone is over the limit: refused before it is even encoded.
    expect((append as Error).message).toMatch(
      /^invalid events: its raft log entry would take at least \d+ bytes, over this member's maxEntryBytes of 65536 \(64 KiB\)/,
    );
    // A payload just at the limit, whose entry (with the ID, type, sequence and framing) is over it.
    const payload = { s: 'x'.repeat(LIMIT - '{"s":""}'.length) };
    expect(JSON.stringify(payload)).toHaveLength(LIMIT);
    const encoded = await store.appendEvents(['a'], 1, [{ type: 'Edge', data: payload }]).catch((e: unknown) => e);
    expect(encoded).toBeInstanceOf(RaftEntryTooLargeError);
    expect((encoded as RaftEntryTooLargeError).bytes).toBeGreaterThan(LIMIT);
    expect((encoded as Error).message).toMatch(/^invalid events: its raft log entry would take \d+ bytes, over/);

    const snapshot = await store.putSnapshotData(['a'], 'x'.repeat(LIMIT), 1).catch((e: unknown) => e);
    expect(snapshot).toBeInstanceOf(RaftEntryTooLargeError);
    expect((snapshot as Error).message).toMatch(/^invalid snapshot:/);

    const claimed = await raft.projections.claim('p', 'holder', 10_000);
    expect(claimed.held).toBe(true);
    const checkpoint = await raft.projections
      .save('p', 'holder', claimed.record.generation, { checkpoint: 'c'.repeat(LIMIT) }, 10_000)
      .catch((e: unknown) => e);
    expect(checkpoint).toBeInstanceOf(RaftEntryTooLargeError);
    expect((checkpoint as Error).message).toMatch(/^invalid projection checkpoint:/);

    // Nothing of the refused writes was stored; the store goes on taking writes.
    expect((await store.getEvents(['a'])).map((event) => event.type)).toEqual(['Small']);
    expect((await raft.loadSnapshot(['a'])).data).toBeUndefined();
    expect((await raft.projections.load('p'))?.checkpoint).toBeUndefined();
    await store.appendEvents(['a'], 1, [{ type: 'Small', data: {} }]);
    expect(await store.getEvents(['a'])).toHaveLength(2);
  });

  it('defaults to 8 MiB and refuses a bad value with ConfigError', () => {
    expect(() => backend(0)).toThrow(ConfigError);
    expect(() => backend(2 ** 40)).toThrow(/maxEntryBytes/);
    expect(backend()).toBeInstanceOf(RaftBackend);
  });
});
