import { ConfigError } from '@timebox/core';
import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createRedisStore, RedisBackend, type RedisBackendOptions } from '../src/index.js';

function configErrorOf(options: RedisBackendOptions): ConfigError {
  try {
    new RedisBackend(options);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`accepted ${JSON.stringify(options)}`);
}

describe('options', () => {
  it.each<[string, RedisBackendOptions]>([
    ['db', { db: -1 }],
    ['db', { db: 1.5 }],
    ['port', { port: 0 }],
    ['port', { port: 70_000 }],
    ['host', { host: '' }],
    ['prefix', { prefix: '' }],
    ['shard', { shard: 'a{b' }],
    ['shard', { shard: 'a}b' }],
    ['shard', { shard: 'a:b' }],
    ['shard', { shard: '' }],
    ['url', { url: 'http://localhost' }],
    ['host', { url: 'redis://localhost', host: 'x' }],
    ['archiveClaimIdleMs', { archiveClaimIdleMs: 0 }],
    ['archiveBlockMs', { archiveBlockMs: -5 }],
    ['archiveGroup', { archiveGroup: '' }],
    ['archiveConsumer', { archiveConsumer: '' }],
    ['password', { password: 42 as unknown as string }],
    ['redisOptions.keyPrefix', { redisOptions: { keyPrefix: 'x:' } }],
    ['autoPipelining', { autoPipelining: 'yes' as unknown as boolean }],
  ])('refuses a bad %s with ConfigError naming it', (field, options) => {
    const error = configErrorOf(options);
    expect(error.field).toBe(field);
    expect(error.message).toContain(field);
  });

  it('refuses connection settings next to a ready client, and a Cluster client without a shard', async () => {
    const client = new Redis({ lazyConnect: true });
    const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true });
    try {
      expect(configErrorOf({ client, url: 'redis://localhost' }).field).toBe('url');
      expect(configErrorOf({ client, db: 1 }).field).toBe('db');
      expect(configErrorOf({ client: {} as Redis }).field).toBe('client');
      expect(configErrorOf({ client: cluster }).field).toBe('shard');
      expect(new RedisBackend({ client: cluster, shard: 'a' }).ownsClient).toBe(false);
    } finally {
      client.disconnect();
      cluster.disconnect();
    }
  });

  it('applies defaults: 127.0.0.1:6379, prefix timebox, an owned connection', async () => {
    const backend = new RedisBackend();
    try {
      expect(backend.keys.base).toBe('timebox');
      expect(backend.ownsClient).toBe(true);
      const options = (backend.client as Redis).options;
      expect([options.host, options.port, options.db]).toEqual(['127.0.0.1', 6379, 0]);
      expect(options.maxRetriesPerRequest).toBe(0);
      expect(options.autoResendUnfulfilledCommands).toBe(false);
    } finally {
      await backend.close();
    }
  });

  it('takes password and db from explicit fields over the URL', async () => {
    const backend = new RedisBackend({ url: 'redis://:inurl@127.0.0.1:6379/2', password: 'explicit', db: 3 });
    try {
      const options = (backend.client as Redis).options;
      expect([options.password, options.db]).toEqual(['explicit', 3]);
    } finally {
      await backend.close();
    }
  });

  it('validates the store config too', () => {
    expect(() => createRedisStore({ maxRetries: 0 })).toThrow(ConfigError);
  });
});
