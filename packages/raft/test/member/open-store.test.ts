import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, InvalidArgumentError, StoreClosedError } from '@timebox/core';
import { afterEach, describe, expect, it } from 'vitest';
import { openRaftStore, RaftMember } from '../../src/raft-member.js';
import { FAST, freePort } from './support.js';

describe('openRaftStore', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });

  async function options() {
    const dir = await mkdtemp(join(tmpdir(), 'timebox-raft-open-'));
    dirs.push(dir);
    return { ...FAST, localId: 'solo', address: `127.0.0.1:${await freePort()}`, dataDir: dir };
  }

  it('opens a single-member cluster whose store owns the member, and a reopen finds the data', { timeout: 30_000 }, async () => {
    const opts = await options();
    const store = await openRaftStore({}, opts);
    await store.ready();
    await store.appendEvents(['solo', '1'], 0, [{ type: 'Noted', data: { text: 'kept' } }]);
    await store.close();
    await expect(store.getEvents(['solo', '1'])).rejects.toBeInstanceOf(StoreClosedError);

    // The member is closed with the store: its data folder opens again, from disk.
    const member = await RaftMember.open({ ...opts, address: `127.0.0.1:${await freePort()}`, servers: undefined });
    try {
      await member.ready();
      expect(member.state.loadEvents(['solo', '1'], 0).map((event) => event.data)).toEqual(['{"text":"kept"}']);
    } finally {
      await member.close();
    }
  });

  it('refuses bad member options and bad backend options, leaving nothing open', { timeout: 30_000 }, async () => {
    const opts = await options();
    await expect(openRaftStore({}, { ...opts, tickMs: 0 })).rejects.toBeInstanceOf(ConfigError);
    await expect(openRaftStore({}, opts, { reads: 'eventual' as 'local' })).rejects.toBeInstanceOf(InvalidArgumentError);
    // Nothing was left holding the folder or the port.
    const store = await openRaftStore({}, opts);
    await store.ready();
    await store.close();
  });
});
