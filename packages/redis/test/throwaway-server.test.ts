import { access } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { createRedisStore } from '../src/index.js';
import { answersPing, findRedis, ThrowawayServer } from './server.js';

describe('test setup: the throwaway redis-server path', () => {
  const previous = process.env.TIMEBOX_REDIS_URL;
  afterEach(() => {
    if (previous === undefined) delete process.env.TIMEBOX_REDIS_URL;
    else process.env.TIMEBOX_REDIS_URL = previous;
  });

  it('starts redis-server on a free port in a temporary folder, serves a store, and removes it all', async () => {
    const server = await ThrowawayServer.start();
    try {
      expect(server.port).not.toBe(6379);
      const store = createRedisStore({}, { url: server.url, prefix: 'throwaway' });
      await store.ready();
      await store.appendEvents(['a'], 0, [{ type: 'Happened', data: { n: 1 } }]);
      expect((await store.getEvents(['a'])).map((event) => event.payload)).toEqual([{ n: 1 }]);
      await store.close();
    } finally {
      await server.stop();
    }
    expect(server.running).toBe(false);
    expect(await answersPing(server.url, 500)).toBe(false);
    await expect(access(server.dir)).rejects.toThrow();
  });

  it('falls back to a throwaway server when nothing answers on the default port', async () => {
    delete process.env.TIMEBOX_REDIS_URL;
    const found = await findRedis('redis://127.0.0.1:1');
    try {
      expect(found.server).toBeDefined();
      expect(found.url).toBe(found.server!.url);
      expect(await answersPing(found.url)).toBe(true);
    } finally {
      await found.server?.stop();
    }
  });

  it('fails naming what to install when redis-server cannot be found', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await expect(ThrowawayServer.start()).rejects.toThrow(/redis-server was not found: install Redis .*TIMEBOX_REDIS_URL/);
    } finally {
      process.env.PATH = path;
    }
  });

  it('prefers TIMEBOX_REDIS_URL when set', async () => {
    const server = await ThrowawayServer.start();
    try {
      process.env.TIMEBOX_REDIS_URL = server.url;
      const found = await findRedis();
      expect(found).toEqual({ url: server.url });
      process.env.TIMEBOX_REDIS_URL = 'redis://127.0.0.1:1';
      await expect(findRedis()).rejects.toThrow(/TIMEBOX_REDIS_URL=redis:\/\/127\.0\.0\.1:1 does not answer/);
    } finally {
      await server.stop();
    }
  });
});
