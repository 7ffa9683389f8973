import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../backend.js';

describe('openStore', () => {
  it('opens the memory backend by name', async () => {
    const store = await openStore({}, 'memory');
    expect(store.backend.name).toBe('memory');
    await store.close();
  });

  it('refuses an unknown backend, naming the supported ones', async () => {
    await expect(openStore({}, 'mongo')).rejects.toThrow(
      'unknown TIMEBOX_BACKEND "mongo": supported values are memory, redis, postgres, raft',
    );
    await expect(openStore({}, 'toString')).rejects.toThrow('supported values are memory, redis, postgres, raft');
  });

  it('opens a three-member raft cluster in this process, which keeps its data in TIMEBOX_RAFT_DIR', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'timebox-example-raft-'));
    const previous = process.env.TIMEBOX_RAFT_DIR;
    process.env.TIMEBOX_RAFT_DIR = dir;
    try {
      const store = await openStore({}, 'raft');
      expect(store.backend.name).toBe('raft');
      await store.appendEvents(['order', 'kept'], 0, [{ type: 'Created', data: { n: 1 } }]);
      await store.close();
      expect((await readdir(dir)).sort()).toEqual(['n1', 'n2', 'n3']);

      const again = await openStore({}, 'raft');
      expect((await again.getEvents(['order', 'kept'])).map((event) => event.payload)).toEqual([{ n: 1 }]);
      await again.close();
    } finally {
      if (previous === undefined) delete process.env.TIMEBOX_RAFT_DIR;
      else process.env.TIMEBOX_RAFT_DIR = previous;
      await rm(dir, { recursive: true, force: true });
    }
  });
});
