import { createExecutor, type AggregateId } from '@timebox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisStore, RedisBackendError } from '../src/index.js';
import { freePort, ThrowawayServer, waitFor } from './server.js';

type TickEvents = { Tick: { marker: string } };

/** Settles with the call's outcome, or 'hung' when it neither resolves nor rejects in time. */
async function outcome(call: Promise<unknown>, ms: number): Promise<{ ok: true } | { ok: false; error: unknown } | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), ms)));
  try {
    return await Promise.race([
      call.then(
        () => ({ ok: true as const }),
        (error: unknown) => ({ ok: false as const, error }),
      ),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe('faults: the server dies in the middle of a stream of execs and comes back', () => {
  let server: ThrowawayServer;
  beforeAll(async () => {
    // Durable: every acknowledged write is fsynced before the reply.
    server = await ThrowawayServer.start({ args: ['--save', '', '--appendonly', 'yes', '--appendfsync', 'always'] });
  });
  afterAll(() => server.stop());

  it(
    'rejects calls with a clear error while down, then resumes with every acknowledged event exactly once',
    { timeout: 90_000 },
    async () => {
      const store = createRedisStore<TickEvents>({}, { url: server.url, prefix: 'faults' });
      await store.ready();
      const executor = createExecutor<{ ticks: number }, TickEvents>(store, {
        initialState: () => ({ ticks: 0 }),
        appliers: { Tick: (state) => ({ ticks: state.ticks + 1 }) },
      });
      const ids: AggregateId[] = [
        ['stream', 'a'],
        ['stream', 'b'],
        ['stream', 'c'],
      ];
      const acknowledged = new Map<string, string[]>(ids.map((id) => [id.join('/'), []]));
      const failures: unknown[] = [];
      const hung: string[] = [];
      let phase: 'before' | 'down' | 'after' = 'before';
      let ackedAfterRestart = 0;
      let counter = 0;

      const writer = async (id: AggregateId) => {
        while (ackedAfterRestart < 30) {
          const marker = `m${counter++}`;
          const result = await outcome(
            executor.exec(id, (_state, aggregator) => aggregator.raise('Tick', { marker })),
            15_000,
          );
          if (result === 'hung') hung.push(marker);
          else if (result.ok) {
            acknowledged.get(id.join('/'))!.push(marker);
            if (phase === 'after') ackedAfterRestart++;
          } else {
            failures.push(result.error);
            // While the server is down there is nothing to do but try again a little later.
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          if (hung.length > 0) return;
        }
      };
      const writers = Promise.all(ids.map(writer));

      await waitFor('30 acknowledged execs', async () => [...acknowledged.values()].flat().length >= 30);
      await server.kill();
      phase = 'down';
      const failuresAtKill = failures.length;
      await waitFor('execs to fail while the server is down', async () => failures.length >= failuresAtKill + 6, 30_000);
      await server.launch();
      phase = 'after';
      await writers;

      expect(hung).toEqual([]);
      expect(failures.length).toBeGreaterThanOrEqual(6);
      for (const error of failures) {
        expect(error).toBeInstanceOf(RedisBackendError);
        expect((error as RedisBackendError).code).toBe('REDIS_UNAVAILABLE');
        expect((error as Error).message).toMatch(
          /^redis backend could not (append events|load a snapshot|load events).*unreachable or the connection was lost/,
        );
      }

      const reader = createRedisStore<TickEvents>({}, { url: server.url, prefix: 'faults' });
      for (const id of ids) {
        const events = await reader.getEvents(id);
        expect(events.map((event) => event.sequence)).toEqual(events.map((_, i) => i));
        const markers = events.map((event) => event.payload.marker);
        expect(new Set(markers).size).toBe(markers.length);
        for (const marker of acknowledged.get(id.join('/'))!) expect(markers).toContain(marker);
      }
      await reader.close();
      await store.close();
    },
  );
});

describe('faults: no server at the address', () => {
  it('ready() rejects with REDIS_UNAVAILABLE and a message naming the refused address', async () => {
    const port = await freePort();
    const store = createRedisStore({}, { url: `redis://127.0.0.1:${port}`, prefix: 'nobody-home' });
    try {
      const error = await store.ready().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(RedisBackendError);
      expect((error as RedisBackendError).code).toBe('REDIS_UNAVAILABLE');
      expect((error as Error).message).toContain(`ECONNREFUSED 127.0.0.1:${port}`);
    } finally {
      await store.close();
    }
  });
});
