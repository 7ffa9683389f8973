import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createRedisStore } from '../src/index.js';
import { commandCalls, ThrowawayServer } from './server.js';

describe('scripts', () => {
  let server: ThrowawayServer;
  beforeAll(async () => {
    server = await ThrowawayServer.start();
  });
  afterAll(() => server.stop());

  it('runs by SHA, and recovers when the server lost its script cache', async () => {
    const admin = new Redis(server.url);
    const store = createRedisStore({ trimEvents: true }, { url: server.url, prefix: 'scripts' });
    try {
      await store.appendEvents(['a'], 0, [{ type: 'T', data: { n: 0 } }]);
      await store.appendEvents(['a'], 1, [{ type: 'T', data: { n: 1 } }]);
      const evalshaBefore = await commandCalls(admin, 'evalsha');
      expect(evalshaBefore).toBeGreaterThan(0);
      await admin.script('FLUSH');
      const evalBefore = await commandCalls(admin, 'eval');
      await store.appendEvents(['a'], 2, [{ type: 'T', data: { n: 2 } }]);
      await store.putSnapshot(['a'], { upTo: 3 }, 3);
      const snapshot = await store.getSnapshot(['a']);
      expect([snapshot.value, snapshot.nextSequence, snapshot.events]).toEqual([{ upTo: 3 }, 3, []]);
      await store.appendEvents(['a'], 3, [{ type: 'T', data: { n: 3 } }]);
      expect((await store.getEvents(['a'])).map((event) => [event.sequence, event.payload])).toEqual([[3, { n: 3 }]]);
      expect(await commandCalls(admin, 'evalsha')).toBeGreaterThan(evalshaBefore);
      // The NOSCRIPT answers were followed by EVAL, which cached the scripts again.
      expect(await commandCalls(admin, 'eval')).toBeGreaterThan(evalBefore);
    } finally {
      await store.close();
      admin.disconnect();
    }
  });
});
