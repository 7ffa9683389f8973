import { describe, expect, it } from 'vitest';
import { openStore } from '../backend.js';

describe('openStore', () => {
  it('opens the memory backend by name', async () => {
    const store = await openStore({}, 'memory');
    expect(store.backend.name).toBe('memory');
    await store.close();
  });

  it('refuses an unknown backend, naming the supported ones', async () => {
    await expect(openStore({}, 'mongo')).rejects.toThrow('unknown TIMEBOX_BACKEND "mongo": supported values are memory, redis, postgres');
    await expect(openStore({}, 'toString')).rejects.toThrow('supported values are memory, redis, postgres');
  });
});
