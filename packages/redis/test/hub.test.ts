import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ConfigError, HubUnavailableError, type Event, type HubGapError, type SubscriptionError } from '@timebox/core';
import { Redis } from 'ioredis';
import { expectHubPattern } from '@timebox/core/conformance';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRedisStore, RedisBackend } from '../src/index.js';
import { freshPrefix } from './namespaces.js';
import { ThrowawayServer, waitFor } from './server.js';

const writerScript = fileURLToPath(new URL('./support/hub-writer.ts', import.meta.url));
const packageDir = fileURLToPath(new URL('..', import.meta.url));

function recorder() {
  const events: Event[] = [];
  const errors: SubscriptionError[] = [];
  return {
    events,
    errors,
    handler: (event: Event) => void events.push(event),
    onError: (error: SubscriptionError) => void errors.push(error),
  };
}

/** Kills the server side of every connection blocked reading the feed (XREAD), as a network fault would. */
async function killFeedConnections(admin: Redis): Promise<number> {
  const clients = (await admin.client('LIST')) as string;
  const ids = clients
    .split('\n')
    .filter((line) => / cmd=xread( |$)/.test(line))
    .map((line) => /(?:^| )id=(\d+)/.exec(line)?.[1])
    .filter((id): id is string => id !== undefined);
  for (const id of ids) await admin.client('KILL', 'ID', id);
  return ids.length;
}

describe('redis event feed', () => {
  // A server of its own: these tests kill connections, which must not touch other test files.
  let server: ThrowawayServer;
  let admin: Redis;
  beforeAll(async () => {
    server = await ThrowawayServer.start();
    admin = new Redis(server.url);
  });
  afterAll(async () => {
    admin.disconnect();
    await server.stop();
  });

  it('a subscriber whose connection dropped resumes after the last entry it read, losing nothing', { timeout: 30_000 }, async () => {
    const prefix = freshPrefix('feed');
    const reader = createRedisStore({}, { url: server.url, prefix });
    const writer = createRedisStore({}, { url: server.url, prefix });
    const got = recorder();
    await reader.subscribe(got.handler, { onError: got.onError });
    await writer.appendEvents(['r'], 0, [{ type: 'Before', data: {} }]);
    await waitFor('the first event', async () => got.events.length === 1);
    expect(await killFeedConnections(admin)).toBe(1);
    for (let i = 1; i <= 20; i++) await writer.appendEvents(['r'], i, [{ type: 'While', data: { i } }]);
    await waitFor('all 21 events', async () => got.events.length >= 21);
    expect(got.events.map((event) => event.sequence)).toEqual(Array.from({ length: 21 }, (_, i) => i));
    expect(got.errors).toEqual([]);
    await Promise.all([reader.close(), writer.close()]);
  });

  it('reports a gap when appends it had not read were trimmed while it was away', { timeout: 30_000 }, async () => {
    const prefix = freshPrefix('gap');
    const reader = createRedisStore({}, { url: server.url, prefix });
    const writer = new RedisBackend({ url: server.url, prefix });
    const writerStore = createRedisStore({}, { url: server.url, prefix });
    const got = recorder();
    await reader.subscribe(got.handler, { onError: got.onError });
    await writerStore.appendEvents(['g'], 0, [{ type: 'Seen', data: {} }]);
    await waitFor('the first event', async () => got.events.length === 1);
    // Cut the reader off, append, and trim the stream to nothing before it reconnects.
    await killFeedConnections(admin);
    await writerStore.appendEvents(['g'], 1, [{ type: 'Lost', data: {} }]);
    await admin.xtrim(writer.keys.feed, 'MAXLEN', 0);
    await writerStore.appendEvents(['g'], 2, [{ type: 'After', data: {} }]);
    await waitFor('the event after the gap', async () => got.events.some((event) => event.type === 'After'));
    expect(got.events.map((event) => event.type)).toEqual(['Seen', 'After']);
    expect(got.errors).toHaveLength(1);
    const gap = got.errors[0] as HubGapError;
    expect(gap.code).toBe('HUB_GAP');
    expect(gap.message).toMatch(
      /feed connection was down .* 1 feed entries \(each one or more appends\) after the last one it read .* were trimmed from the feed stream/,
    );
    await Promise.all([reader.close(), writerStore.close(), writer.close()]);
  });

  it('publishes only while a subscriber holds the feed lease', { timeout: 30_000 }, async () => {
    const prefix = freshPrefix('lease');
    const store = createRedisStore({}, { url: server.url, prefix });
    const keys = (store.backend as RedisBackend).keys;
    await store.appendEvents(['l'], 0, [{ type: 'Unheard', data: {} }]);
    expect(await admin.exists(keys.feed)).toBe(0);
    const stop = await store.subscribe(() => undefined);
    expect(await admin.pttl(keys.feedLease)).toBeGreaterThan(50_000);
    await store.appendEvents(['l'], 1, [{ type: 'Heard', data: {} }]);
    expect(await admin.xlen(keys.feed)).toBe(1);
    await stop();
    await store.close();
  });

  it('reports a gap when the feed lease lapsed and appends went unpublished', { timeout: 30_000 }, async () => {
    const prefix = freshPrefix('lapse');
    const reader = createRedisStore({}, { url: server.url, prefix });
    const writer = createRedisStore({}, { url: server.url, prefix });
    const keys = (reader.backend as RedisBackend).keys;
    const got = recorder();
    await reader.subscribe(got.handler, { onError: got.onError });
    await writer.appendEvents(['p'], 0, [{ type: 'Seen', data: {} }]);
    await waitFor('the first event', async () => got.events.length === 1);
    // The lease lapses (as if nobody renewed it for a minute) and an append goes unpublished.
    await admin.del(keys.feedLease);
    await writer.appendEvents(['p'], 1, [{ type: 'Unpublished', data: {} }]);
    // The reader looks at the lease again after a reconnect (or its 20 s renewal).
    await killFeedConnections(admin);
    await waitFor('the gap report', async () => got.errors.length > 0);
    await writer.appendEvents(['p'], 2, [{ type: 'After', data: {} }]);
    await waitFor('the event after the gap', async () => got.events.some((event) => event.type === 'After'));
    expect(got.events.map((event) => event.type)).toEqual(['Seen', 'After']);
    expect(got.errors).toHaveLength(1);
    expect(got.errors[0]!.message).toContain('the feed lease lapsed');
    await Promise.all([reader.close(), writer.close()]);
  });

  it('keeps about feedRetention entries, and none with feedRetention 0', { timeout: 30_000 }, async () => {
    const prefix = freshPrefix('retention');
    const store = createRedisStore({}, { url: server.url, prefix, feedRetention: 1000 });
    await store.subscribe(() => undefined);
    // One at a time, so that each append is a feed entry of its own.
    for (let i = 0; i < 3000; i++) await store.appendEvents(['k', String(i)], 0, [{ type: 'T', data: {} }]);
    const backend = store.backend as RedisBackend;
    const length = await admin.xlen(backend.keys.feed);
    expect(length).toBeGreaterThanOrEqual(1000);
    expect(length).toBeLessThan(1500);
    await store.close();

    const quiet = createRedisStore({}, { url: server.url, prefix: freshPrefix('quiet'), feedRetention: 0 });
    await quiet.appendEvents(['k'], 0, [{ type: 'T', data: {} }]);
    expect(await admin.exists((quiet.backend as RedisBackend).keys.feed)).toBe(0);
    await expect(quiet.subscribe(() => undefined)).rejects.toBeInstanceOf(HubUnavailableError);
    await quiet.close();
  });

  it(
    'a large append and appends that shared a script call reach a live subscriber whole, once each, in order',
    { timeout: 30_000 },
    async () => {
      const prefix = freshPrefix('parts');
      const store = createRedisStore({}, { url: server.url, prefix });
      const got = recorder();
      await store.subscribe(got.handler, { onError: got.onError, bufferSize: 50_000 });
      // 5,000 events: more than one feed entry (or one Lua unpack) can carry.
      await store.appendEvents(
        ['big'],
        0,
        Array.from({ length: 5_000 }, (_, n) => ({ type: 'Big', data: { n } })),
      );
      // 100 appends issued together: they share script calls, and so feed entries.
      await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          store.appendEvents(['small', String(i)], 0, [
            { type: 'Small', data: { i } },
            { type: 'Small', data: { i } },
          ]),
        ),
      );
      await waitFor('every event', async () => got.events.length >= 5_200);
      expect(got.errors).toEqual([]);
      const big = got.events.filter((event) => event.type === 'Big');
      expect(big.map((event) => event.sequence)).toEqual(Array.from({ length: 5_000 }, (_, n) => n));
      expect(big.map((event) => (event.payload as { n: number }).n)).toEqual(Array.from({ length: 5_000 }, (_, n) => n));
      const small = new Map<string, number[]>();
      for (const event of got.events.filter((event) => event.type === 'Small')) {
        const key = event.aggregateId.join('/');
        small.set(key, [...(small.get(key) ?? []), event.sequence]);
      }
      expect(small.size).toBe(100);
      for (const sequences of small.values()) expect(sequences).toEqual([0, 1]);
      expect(await store.getEvents(['big'])).toHaveLength(5_000);
      await store.close();
    },
  );

  it('refuses a feedRetention below the page size', () => {
    for (const feedRetention of [1, 999, -1, 1.5, Number.NaN]) {
      expect(() => new RedisBackend({ url: server.url, feedRetention })).toThrow(ConfigError);
    }
    expect(() => new RedisBackend({ url: server.url, feedRetention: 999 })).toThrow(
      'feedRetention must be 0 (no feed) or an integer ≥ 1000',
    );
  });
});

describe('two OS processes over one Redis', () => {
  it('every event appended by one is delivered to the other, exactly once and in order per aggregate', { timeout: 120_000 }, async () => {
    const url = inject('redisUrl');
    const prefix = freshPrefix('processes');
    const reader = createRedisStore({}, { url, prefix });
    const got = recorder();
    await reader.subscribe(got.handler, { onError: got.onError });
    const aggregates = 20;
    const rounds = 25;
    const output = await new Promise<string>((resolve, reject) => {
      execFile(
        'npx',
        ['tsx', writerScript, url, prefix, String(aggregates), String(rounds)],
        { cwd: packageDir },
        (error, stdout, stderr) => (error ? reject(new Error(`writer process failed: ${stderr || error.message}`)) : resolve(stdout)),
      );
    });
    const { pid, counts } = JSON.parse(output.trim().split('\n').at(-1) as string) as { pid: number; counts: number[] };
    const total = counts.reduce((sum, n) => sum + n, 0);
    await waitFor(`${total} events`, async () => got.events.length >= total, 30_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expectHubPattern(got.events, counts, pid);
    expect(pid).not.toBe(process.pid);
    expect(got.errors).toEqual([]);
    await reader.close();
  });
});
