import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisStore, RedisBackendError } from '../src/index.js';
import { ThrowawayServer } from './server.js';

describe('a password-protected server', () => {
  let server: ThrowawayServer;
  beforeAll(async () => {
    server = await ThrowawayServer.start({ password: 's3cret pass' });
  });
  afterAll(() => server.stop());

  it('rejects a wrong password with a clear authentication error from ready()', async () => {
    const store = createRedisStore({}, { port: server.port, password: 'wrong' });
    try {
      const error = await store.ready().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(RedisBackendError);
      expect((error as RedisBackendError).code).toBe('REDIS_AUTH_FAILED');
      expect((error as Error).message).toMatch(/authentication failed/);
    } finally {
      await store.close();
    }
  });

  it('rejects a missing password the same way', async () => {
    const store = createRedisStore({}, { port: server.port });
    try {
      await expect(store.ready()).rejects.toThrow(/authentication failed/);
    } finally {
      await store.close();
    }
  });

  it('works with the right password, given as a field or in the URL', async () => {
    const viaField = createRedisStore({}, { port: server.port, password: 's3cret pass', prefix: 'auth' });
    const viaUrl = createRedisStore({}, { url: `redis://:${encodeURIComponent('s3cret pass')}@127.0.0.1:${server.port}`, prefix: 'auth' });
    try {
      await viaField.ready();
      await viaField.appendEvents(['x'], 0, [{ type: 'Happened', data: {} }]);
      await expect(viaUrl.getEvents(['x'])).resolves.toHaveLength(1);
    } finally {
      await viaField.close();
      await viaUrl.close();
    }
  });
});
