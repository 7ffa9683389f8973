import { VersionConflictError, type Index } from '@timebox/core';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisStore } from '../src/index.js';
import { commandCalls, ThrowawayServer } from './server.js';

type Events = { Set: Index; Plain: { n: number } };

describe('appends issued together share one script call', () => {
  let server: ThrowawayServer;
  beforeAll(async () => {
    server = await ThrowawayServer.start();
  });
  afterAll(() => server.stop());

  it('gives each append of a combined call its own sequence check, index update and result', async () => {
    const admin = new Redis(server.url);
    const store = createRedisStore<Events>(
      { indexer: (events) => events.map((event) => (event.type === 'Set' ? event.payload : undefined)) },
      { url: server.url, prefix: 'batching' },
    );
    try {
      await store.ready();
      await store.appendEvents(['warm'], 0, [{ type: 'Plain', data: { n: 0 } }]);
      const before = await commandCalls(admin, 'evalsha');
      const calls: Promise<unknown>[] = [];
      for (let i = 0; i < 100; i++) {
        // Three writers race for sequence 0 of the same aggregate: exactly one may win.
        for (let writer = 0; writer < 3; writer++) {
          calls.push(
            store.appendEvents(['race', String(i)], 0, [{ type: 'Plain', data: { n: writer } }]).then(
              () => 'won',
              (error: unknown) => {
                if (error instanceof VersionConflictError) return error;
                throw error;
              },
            ),
          );
        }
        calls.push(
          store.appendEvents(['indexed', String(i)], 0, [
            { type: 'Set', data: { status: i % 2 ? 'odd' : 'even', labels: { tens: String(Math.floor(i / 10)) } } },
          ]),
        );
      }
      const outcomes = await Promise.all(calls);
      const scriptCalls = (await commandCalls(admin, 'evalsha')) - before;
      expect(scriptCalls).toBeLessThan(outcomes.length / 4);

      for (let i = 0; i < 100; i++) {
        const race = outcomes.slice(i * 4, i * 4 + 3);
        expect(race.filter((outcome) => outcome === 'won')).toHaveLength(1);
        const winner = race.indexOf('won');
        for (const loser of race.filter((outcome) => outcome !== 'won') as VersionConflictError[]) {
          expect([loser.expectedSequence, loser.actualSequence]).toEqual([0, 1]);
          expect(loser.newEvents.map((event) => event.payload)).toEqual([{ n: winner }]);
        }
        const events = await store.getEvents(['race', String(i)]);
        expect(events.map((event) => [event.sequence, event.payload])).toEqual([[0, { n: winner }]]);
      }
      expect(await store.listAggregatesByStatus('odd')).toHaveLength(50);
      expect(await store.listAggregatesByStatus('even')).toHaveLength(50);
      expect(await store.listLabelValues('tens')).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
      expect(await store.listAggregatesByLabel('tens', '3')).toHaveLength(10);
      expect(await store.listAggregates(['race'])).toHaveLength(100);
    } finally {
      await store.close();
      admin.disconnect();
    }
  });
});
