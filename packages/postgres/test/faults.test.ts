import { afterAll, describe, expect, it } from 'vitest';
import type { Index } from '@timebox/core';
import { createPostgresStore, PostgresBackendError } from '../src/index.js';
import { adminSql, deletePrefix, eventually, randomPrefix, serverUrl } from './helpers.js';
import { startThrowawayCluster } from './server.js';

type FaultEvents = { Opened: { k: number }; Filled: { k: number; part: number } };

const indexer = (events: readonly { type: string; payload: unknown }[]): (Index | undefined)[] =>
  events.map((event) => {
    if (event.type !== 'Opened') return undefined;
    const { k } = event.payload as { k: number };
    return { status: `batch-${k}`, labels: { batch: String(k) } };
  });

function batch(k: number): { type: 'Opened' | 'Filled'; data: { k: number; part?: number } }[] {
  return [
    { type: 'Opened', data: { k } },
    { type: 'Filled', data: { k, part: 1 } },
    { type: 'Filled', data: { k, part: 2 } },
  ];
}

const admin = adminSql();
afterAll(() => admin.end());

describe('faults', () => {
  // At 4 connections each append takes a pool connection; at 12, appends travel in batches on
  // connections of their own (see AppendBatcher), so a lost connection fails many at once and
  // their writers all retry at once.
  it.each([4, 12])(
    'terminating connections mid-append fails calls cleanly, half-writes nothing, and the pool recovers (maxConns %i)',
    async (maxConns) => {
      const prefix = randomPrefix('fault');
      const applicationName = `timebox-fault-${prefix.slice(-12)}`;
      const store = createPostgresStore<FaultEvents>(
        { indexer },
        { url: serverUrl(), prefix, maxConns, postgres: { connection: { application_name: applicationName } } },
      );
      try {
        await store.ready();
        const aggregates = 24;
        const batchesPerWriter = 12;
        const failures: unknown[] = [];
        let running = true;

        const writer = async (a: number) => {
          const id = ['faulty', String(a)];
          let next = 0;
          for (let k = 0; k < batchesPerWriter; k++) {
            try {
              await store.appendEvents(id, next, batch(k) as never);
              next += 3;
            } catch (error) {
              failures.push(error);
              // The batch may or may not have committed: learn the truth, retrying the read itself.
              for (;;) {
                const events = await store.getEvents(id).catch(() => undefined);
                if (events !== undefined) {
                  next = events.length;
                  break;
                }
              }
            }
          }
        };

        let terminated = 0;
        // Rounds of terminations while the writers run (bounded, so the test ends soon after).
        const killer = (async () => {
          for (let round = 0; running && round < 25; round++) {
            await new Promise((resolve) => setTimeout(resolve, 40));
            const killed = await admin`
            SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ${applicationName}`;
            terminated += killed.length;
          }
        })();
        await Promise.all(Array.from({ length: aggregates }, (_, a) => writer(a)));
        running = false;
        await killer;

        // The client notices a connection killed while idle only when it next uses it, so the
        // first calls after the faults may still fail; the pool must then come back.
        let failedAfterFaults = 0;
        const recovered = await eventually(() =>
          store.getEvents(['faulty', '0']).then(
            () => true,
            () => (failedAfterFaults++, false),
          ),
        );
        expect(recovered).toBe(true);
        expect(failedAfterFaults).toBeLessThanOrEqual(maxConns);

        // The fault must actually have hit for this test to mean anything.
        expect(terminated).toBeGreaterThan(0);
        expect(failures.length).toBeGreaterThan(0);
        for (const failure of failures) {
          expect(failure).toBeInstanceOf(PostgresBackendError);
          expect((failure as PostgresBackendError).connectionLost).toBe(true);
          expect((failure as Error).message).toMatch(/connection was lost/);
        }

        for (let a = 0; a < aggregates; a++) {
          const id = ['faulty', String(a)];
          const events = await store.getEvents(id);
          // Gap-free, and made of whole batches only.
          expect(events.map((event) => event.sequence)).toEqual(events.map((_, i) => i));
          expect(events.length % 3).toBe(0);
          const ks: number[] = [];
          for (let i = 0; i < events.length; i += 3) {
            const k = events[i]!.payload.k;
            expect(events.slice(i, i + 3).map((event) => [event.type, event.payload.k])).toEqual([
              ['Opened', k],
              ['Filled', k],
              ['Filled', k],
            ]);
            ks.push(k);
          }
          expect([...ks].sort((x, y) => x - y)).toEqual(ks);
          // The index agrees with the events that were stored.
          const last = ks[ks.length - 1];
          await expect(store.getAggregateStatus(id)).resolves.toBe(last === undefined ? '' : `batch-${last}`);
          if (last !== undefined) expect(await store.listAggregatesByLabel('batch', String(last))).toContainEqual(id);
          const [head] = await admin<{ next: string }[]>`
          SELECT next_sequence::text AS next FROM timebox_index WHERE prefix = ${prefix} AND aggregate = ${id.join(':')}`;
          expect(Number(head?.next ?? 0)).toBe(events.length);
        }

        // The pool recovers: every aggregate takes another batch.
        for (let a = 0; a < aggregates; a++) {
          const id = ['faulty', String(a)];
          const length = (await store.getEvents(id)).length;
          await store.appendEvents(id, length, batch(99) as never);
          await expect(store.getAggregateStatus(id)).resolves.toBe('batch-99');
        }
      } finally {
        await store.close();
        await deletePrefix(admin, prefix);
      }
    },
  );

  it('rejects with a clear connection error when no server answers', async () => {
    // A cluster that existed and is gone leaves a port with nothing listening.
    const server = await startThrowawayCluster();
    await server.stop();
    const store = createPostgresStore({}, { url: server.url, prefix: randomPrefix(), postgres: { connect_timeout: 2 } });
    const error = await store.ready().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PostgresBackendError);
    expect((error as PostgresBackendError).connectionLost).toBe(true);
    expect((error as PostgresBackendError).code).toBe('POSTGRES_UNREACHABLE');
    expect((error as Error).message).toMatch(
      /postgres: create the schema failed: the server cannot be reached \(.*ECONNREFUSED.*\); nothing was sent/,
    );
    await store.close();
  });
});

describe('pool', () => {
  it('never opens more than maxConns connections, and uses them all under load', async () => {
    const prefix = randomPrefix('pool');
    const applicationName = `timebox-pool-${prefix.slice(-12)}`;
    const maxConns = 3;
    const store = createPostgresStore(
      {},
      { url: serverUrl(), prefix, maxConns, postgres: { connection: { application_name: applicationName } } },
    );
    try {
      await store.ready();
      let running = true;
      let most = 0;
      const sampler = (async () => {
        while (running) {
          const [row] = await admin<{ n: number }[]>`
            SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = ${applicationName}`;
          most = Math.max(most, row!.n);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      const load = async (a: number) => {
        for (let i = 0; i < 10; i++) {
          await store.appendEvents(['pool', String(a)], i, [{ type: 'Tick', data: { i } }]);
          await store.getEvents(['pool', String(a)]);
        }
      };
      await Promise.all(Array.from({ length: 60 }, (_, a) => load(a)));
      // Keep the load up until the sampler has seen the pool full at least once (bounded).
      await eventually(async () => {
        await Promise.all(Array.from({ length: 30 }, (_, a) => store.getEvents(['pool', String(a)])));
        return most >= maxConns;
      }, 20_000);
      running = false;
      await sampler;
      expect(most).toBe(maxConns);
    } finally {
      await store.close();
      await deletePrefix(admin, prefix);
    }
  });
});
