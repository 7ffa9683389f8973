import postgres, { type TransactionSql } from 'postgres';
import { createStore, StoreClosedError, type Event } from '@timebox/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PostgresBackend, PostgresBackendError } from '../src/index.js';
import { adminSql, appendFirst, deletePrefix, eventually, randomPrefix, serverUrl } from './helpers.js';

const admin = adminSql();
const prefixes: string[] = [];
// A read model of the tests' own: rows written by projection work, keyed by store prefix.
const READ_MODEL = 'projection_test_rows';

beforeAll(async () => {
  await admin`CREATE TABLE IF NOT EXISTS ${admin(READ_MODEL)} (prefix text NOT NULL, k text NOT NULL, PRIMARY KEY (prefix, k))`;
});
afterAll(async () => {
  for (const prefix of prefixes) {
    await deletePrefix(admin, prefix);
    await admin`DELETE FROM ${admin(READ_MODEL)} WHERE prefix = ${prefix}`;
  }
  await admin.end();
});

function open(maxConns = 3): { backend: PostgresBackend; prefix: string } {
  const prefix = randomPrefix('projection');
  prefixes.push(prefix);
  return { backend: new PostgresBackend({ url: serverUrl(), prefix, maxConns }), prefix };
}

/** Makes the lease of `name` run out now, by the server's clock. */
async function expireLease(prefix: string, name: string): Promise<void> {
  await admin`UPDATE timebox_projection SET lease_until = clock_timestamp() - interval '1 second' WHERE prefix = ${prefix} AND name = ${name}`;
}

/**
 * Awaits `step`, failing after `ms` with what the server was doing (sessions not idle, and the
 * projection records of `prefix`), so that a stuck step says where it stuck instead of timing out.
 */
async function within<T>(ms: number, label: string, prefix: string, step: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void (async () => {
        const sessions = await admin`
          SELECT pid, state, wait_event_type, wait_event, backend_xid::text, now() - xact_start AS age, left(query, 120) AS query
            FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'`;
        const records = await admin`SELECT * FROM timebox_projection WHERE prefix = ${prefix}`;
        reject(
          new Error(`${label} did not finish within ${ms} ms; sessions ${JSON.stringify(sessions)}; records ${JSON.stringify(records)}`),
        );
      })();
    }, ms);
  });
  try {
    return await Promise.race([step, stuck]);
  } finally {
    clearTimeout(timer);
  }
}

async function retryOnLoss<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= 3 || !(error instanceof PostgresBackendError) || !error.connectionLost) throw error;
    }
  }
}

async function readModel(prefix: string): Promise<string[]> {
  const rows = await admin<{ k: string }[]>`SELECT k FROM ${admin(READ_MODEL)} WHERE prefix = ${prefix} ORDER BY k`;
  return rows.map((row) => row.k);
}

describe('postgres projection store', () => {
  it('claims, renews, refuses a live lease to others and hands an expired one over, by the server clock', async () => {
    const { backend, prefix } = open();
    try {
      await expect(backend.projections.load('p')).resolves.toBeUndefined();
      const first = await backend.projections.claim('p', 'runner-a', 30_000);
      expect(first.held).toBe(true);
      expect(first.record).toMatchObject({ name: 'p', holder: 'runner-a', generation: 0 });
      expect(first.record.checkpoint).toBeUndefined();
      const [clock] = await admin<{ server: number }[]>`SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::float8 AS server`;
      const server = clock!.server;
      expect(first.record.leaseUntil).toBeGreaterThan(server + 25_000);
      expect(first.record.leaseUntil).toBeLessThanOrEqual(server + 31_000);

      // A client whose clock runs an hour ahead still sees the lease as held: the server judges.
      const now = Date.now();
      const skew = vi.spyOn(Date, 'now').mockReturnValue(now + 3_600_000);
      try {
        const other = await backend.projections.claim('p', 'runner-b', 30_000);
        expect(other.held).toBe(false);
        expect(other.record.holder).toBe('runner-a');
      } finally {
        skew.mockRestore();
      }
      expect((await backend.projections.claim('p', 'runner-a', 30_000)).held).toBe(true);

      await expireLease(prefix, 'p');
      const expired = await backend.projections.load('p');
      expect(expired).toMatchObject({ holder: undefined, leaseUntil: 0 });
      const taken = await backend.projections.claim('p', 'runner-b', 30_000);
      expect(taken).toMatchObject({ held: true, record: { holder: 'runner-b' } });
      // runner-a's saves now fail, runner-b's work.
      await expect(backend.projections.save('p', 'runner-a', 0, { checkpoint: 'a' }, 30_000)).resolves.toBe('lost-lease');
      await expect(backend.projections.save('p', 'runner-b', 0, { checkpoint: 'b' }, 30_000)).resolves.toBe('ok');
      await backend.projections.release('p', 'runner-a');
      expect((await backend.projections.load('p'))?.holder).toBe('runner-b');
      await backend.projections.release('p', 'runner-b');
      expect(await backend.projections.load('p')).toMatchObject({ holder: undefined, leaseUntil: 0, checkpoint: 'b' });
      expect((await backend.projections.claim('p', 'runner-c', 1_000)).held).toBe(true);
    } finally {
      await backend.close();
    }
  });

  it('saves checkpoints and errors exactly as given, conditionally on lease and generation; reset bumps the generation', async () => {
    const { backend } = open();
    try {
      const odd = 'a\u0000b\u0001c "quoted" 🙂 \\ $$';
      expect((await backend.projections.claim(odd, odd, 30_000)).held).toBe(true);
      await expect(backend.projections.save(odd, odd, 0, { checkpoint: odd, lastError: odd }, 30_000)).resolves.toBe('ok');
      expect(await backend.projections.load(odd)).toMatchObject({ name: odd, holder: odd, checkpoint: odd, lastError: odd, generation: 0 });
      // Absent keeps, null clears.
      await backend.projections.save(odd, odd, 0, {}, 30_000);
      expect(await backend.projections.load(odd)).toMatchObject({ checkpoint: odd, lastError: odd });
      await backend.projections.save(odd, odd, 0, { lastError: null }, 30_000);
      expect((await backend.projections.load(odd))?.lastError).toBeUndefined();

      // A reset replaces the checkpoint whoever holds the lease, clears the error, bumps the generation.
      await backend.projections.save(odd, odd, 0, { lastError: 'boom' }, 30_000);
      await backend.projections.reset(odd, 'from-here');
      const reset = await backend.projections.load(odd);
      expect(reset).toMatchObject({ checkpoint: 'from-here', generation: 1, holder: odd });
      expect(reset?.lastError).toBeUndefined();
      await expect(backend.projections.save(odd, odd, 0, { checkpoint: 'stale' }, 30_000)).resolves.toBe('reset');
      expect((await backend.projections.load(odd))?.checkpoint).toBe('from-here');
      await expect(backend.projections.save(odd, odd, 1, { checkpoint: 'fresh' }, 30_000)).resolves.toBe('ok');
      await backend.projections.reset(odd, undefined);
      expect(await backend.projections.load(odd)).toMatchObject({ checkpoint: undefined, generation: 2 });

      // reset creates a missing record; a never-claimed record cannot be saved.
      await backend.projections.reset('fresh', 'x');
      expect(await backend.projections.load('fresh')).toMatchObject({ name: 'fresh', checkpoint: 'x', generation: 1, holder: undefined });
      await expect(backend.projections.save('missing', 'h', 0, { checkpoint: 'x' }, 30_000)).resolves.toBe('lost-lease');
      expect(await backend.projections.load('missing')).toBeUndefined();
    } finally {
      await backend.close();
    }
  });

  it('two processes racing to claim one name: exactly one holds it', async () => {
    const backends = Array.from({ length: 6 }, () => open(2));
    const shared = backends[0]!.prefix;
    const others = backends.map(() => new PostgresBackend({ url: serverUrl(), prefix: shared, maxConns: 2 }));
    try {
      const results = await Promise.all(others.map((backend, i) => backend.projections.claim('race', `runner-${i}`, 30_000)));
      expect(results.filter((result) => result.held)).toHaveLength(1);
      const winner = results.findIndex((result) => result.held);
      for (const result of results) expect(result.record.holder).toBe(`runner-${winner}`);
    } finally {
      await Promise.all([...others, ...backends.map((b) => b.backend)].map((backend) => backend.close()));
    }
  });

  it('refuses every call after close', async () => {
    const { backend } = open();
    await backend.ready();
    await backend.close();
    const calls: [string, () => Promise<unknown>][] = [
      ['load', () => backend.projections.load('p')],
      ['claim', () => backend.projections.claim('p', 'h', 1_000)],
      ['save', () => backend.projections.save('p', 'h', 0, {}, 1_000)],
      ['release', () => backend.projections.release('p', 'h')],
      ['reset', () => backend.projections.reset('p', undefined)],
      ['saveProjectionWith', () => backend.saveProjectionWith('p', 'h', 0, {}, 1_000, async () => undefined)],
      ['readLog', () => backend.readLog({ after: [0], limit: 1 })],
      ['logHead', () => backend.logHead()],
    ];
    for (const [name, call] of calls) await expect(call(), name).rejects.toBeInstanceOf(StoreClosedError);
  });
});

describe('saveProjectionWith', () => {
  const work =
    (prefix: string, ...keys: string[]) =>
    async (tx: TransactionSql) => {
      for (const k of keys) await tx`INSERT INTO ${tx(READ_MODEL)} (prefix, k) VALUES (${prefix}, ${k})`;
    };

  it('commits the work once, together with the checkpoint', async () => {
    const { backend, prefix } = open();
    try {
      await backend.projections.claim('rm', 'me', 30_000);
      await expect(
        backend.saveProjectionWith('rm', 'me', 0, { checkpoint: 'c1', lastError: null }, 30_000, work(prefix, 'a', 'b')),
      ).resolves.toBe('ok');
      expect(await readModel(prefix)).toEqual(['a', 'b']);
      expect((await backend.projections.load('rm'))?.checkpoint).toBe('c1');
      await expect(backend.saveProjectionWith('rm', 'me', 0, { checkpoint: 'c2' }, 30_000, work(prefix, 'c'))).resolves.toBe('ok');
      expect(await readModel(prefix)).toEqual(['a', 'b', 'c']);
      expect((await backend.projections.load('rm'))?.checkpoint).toBe('c2');
    } finally {
      await backend.close();
    }
  });

  it('rolls the work back when the lease was lost or the projection reset, and when the work throws', async () => {
    const { backend, prefix } = open();
    try {
      await backend.projections.claim('rm', 'me', 30_000);
      await backend.saveProjectionWith('rm', 'me', 0, { checkpoint: 'c1' }, 30_000, work(prefix, 'kept'));

      // Lost lease: another runner took over after the lease ran out.
      await expireLease(prefix, 'rm');
      await backend.projections.claim('rm', 'other', 30_000);
      await expect(backend.saveProjectionWith('rm', 'me', 0, { checkpoint: 'c2' }, 30_000, work(prefix, 'lost'))).resolves.toBe(
        'lost-lease',
      );
      expect(await readModel(prefix)).toEqual(['kept']);
      expect((await backend.projections.load('rm'))?.checkpoint).toBe('c1');

      // A reset that lands while the work runs: the save sees the new generation.
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const saving = backend.saveProjectionWith('rm', 'other', 0, { checkpoint: 'c3' }, 30_000, async (tx) => {
        await work(prefix, 'reset')(tx);
        await gate;
      });
      await backend.projections.reset('rm', 'rebuilt');
      release();
      await expect(saving).resolves.toBe('reset');
      expect(await readModel(prefix)).toEqual(['kept']);
      expect(await backend.projections.load('rm')).toMatchObject({ checkpoint: 'rebuilt', generation: 1 });

      // The work throws: its error comes back and nothing it did stays.
      const failure = new Error('read model refused');
      await expect(
        backend.saveProjectionWith('rm', 'other', 1, { checkpoint: 'c4' }, 30_000, async (tx) => {
          await work(prefix, 'half')(tx);
          throw failure;
        }),
      ).rejects.toBe(failure);
      expect(await readModel(prefix)).toEqual(['kept']);
      expect((await backend.projections.load('rm'))?.checkpoint).toBe('rebuilt');

      // A failing statement of the work is the work's error too, and rolls back.
      const duplicate = await backend
        .saveProjectionWith('rm', 'other', 1, { checkpoint: 'c5' }, 30_000, work(prefix, 'again', 'kept'))
        .catch((e: unknown) => e);
      expect(duplicate).not.toBeInstanceOf(PostgresBackendError);
      expect((duplicate as { code?: string }).code).toBe('23505');
      expect(await readModel(prefix)).toEqual(['kept']);
      await expect(backend.saveProjectionWith('rm', 'other', 1, { checkpoint: 'c6' }, 30_000, work(prefix, 'next'))).resolves.toBe('ok');
      expect(await readModel(prefix)).toEqual(['kept', 'next']);
    } finally {
      await backend.close();
    }
  });

  it('a lost connection rejects with connectionLost, sends nothing more on it, and crashes nothing', async () => {
    const { backend, prefix } = open(2);
    const crashes: unknown[] = [];
    const onCrash = (error: unknown) => crashes.push(error);
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
    try {
      await backend.projections.claim('rm', 'me', 30_000);
      const terminate = (pid: number) => admin`SELECT pg_terminate_backend(${pid})`;

      // The connection dies under a running statement of the work.
      const inFlight = await backend
        .saveProjectionWith('rm', 'me', 0, { checkpoint: 'x' }, 30_000, async (tx) => {
          await work(prefix, 'in-flight')(tx);
          const [row] = await tx<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
          await Promise.all([tx`SELECT pg_sleep(5)`, terminate(row!.pid)]);
        })
        .catch((e: unknown) => e);
      expect(inFlight).toBeInstanceOf(PostgresBackendError);
      expect((inFlight as PostgresBackendError).connectionLost).toBe(true);

      // The connection dies while the work is busy elsewhere: the call rejects at once, and when
      // the work then makes a statement, it is refused without being sent.
      let refused: unknown;
      let workDone!: () => void;
      const workFinished = new Promise<void>((resolve) => (workDone = resolve));
      const idle: Promise<unknown> = backend.saveProjectionWith('rm', 'me', 0, { checkpoint: 'y' }, 30_000, async (tx) => {
        try {
          await work(prefix, 'idle')(tx);
          const [row] = await tx<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
          await terminate(row!.pid);
          await idle.catch(() => undefined);
          refused = await tx`SELECT 1`.catch((e: unknown) => e);
        } finally {
          workDone();
        }
      });
      const idleError = await idle.catch((e: unknown) => e);
      expect(idleError).toBeInstanceOf(PostgresBackendError);
      expect((idleError as PostgresBackendError).connectionLost).toBe(true);
      await workFinished;
      expect((refused as { code?: string }).code).toBe('CONNECTION_CLOSED');
      expect((refused as Error).message).toMatch(/no further statement was sent/);

      // Nothing of either attempt committed, and the backend goes on. (postgres.js 3.4.9 hands the
      // stale FATAL of a killed busy session to the next statement on that pool slot, so a call
      // right after may still report the loss; it is retried like any connection loss.)
      expect(await readModel(prefix)).toEqual([]);
      expect((await retryOnLoss(() => backend.projections.load('rm')))?.checkpoint).toBeUndefined();
      await expect(
        retryOnLoss(() => backend.saveProjectionWith('rm', 'me', 0, { checkpoint: 'z' }, 30_000, work(prefix, 'after'))),
      ).resolves.toBe('ok');
      expect(await readModel(prefix)).toEqual(['after']);
      expect(crashes).toEqual([]);
    } finally {
      process.off('uncaughtException', onCrash);
      process.off('unhandledRejection', onCrash);
      await backend.close();
    }
  });

  it('runs on a pool of its own: a busy store pool neither breaks the transaction nor inherits it', async () => {
    // With one pool connection busy (a log read waiting for an open append), postgres.js would
    // queue BEGIN behind that read on the same connection and, with max_pipeline 1, never reserve
    // it: sql.begin failed with a TypeError and the connection went back to the pool inside the
    // open transaction, where later appends "succeeded" without ever committing.
    const { backend, prefix } = open(1);
    const held = postgres(serverUrl(), { max: 1, onnotice: () => undefined });
    const crashes: unknown[] = [];
    const onCrash = (error: unknown) => crashes.push(error);
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
    try {
      await backend.projections.claim('rm', 'me', 30_000);
      // Once prepared on the connection, a statement is sent without describing it first, and the
      // driver counts the connection busy (room for one more) rather than full while it runs.
      await backend.readLog({ after: [0], limit: 10 });
      await held`BEGIN`;
      await appendFirst(held, prefix, 'held', [['T', 1, '{}']]);
      await backend.append({ id: ['visible'], expectedSequence: 0, events: [{ type: 'T', sequence: 0, timestamp: 1, data: '{}' }] });
      const reading = backend.readLog({ after: [0], limit: 10 });
      const waiting = async () =>
        (await admin`SELECT 1 FROM pg_stat_activity WHERE query LIKE '%timebox_read_log%' AND wait_event = 'PgSleep'`).length > 0;
      expect(await eventually(waiting)).toBe(true);
      await expect(backend.saveProjectionWith('rm', 'me', 0, { checkpoint: 'c' }, 30_000, work(prefix, 'done'))).resolves.toBe('ok');
      await reading;
      await held`ROLLBACK`;
      // Appends through the store's pool commit (seen from another connection).
      await backend.append({ id: ['after'], expectedSequence: 0, events: [{ type: 'T', sequence: 0, timestamp: 2, data: '{}' }] });
      const committed = await admin<
        { aggregate: string }[]
      >`SELECT aggregate FROM timebox_events WHERE prefix = ${prefix} ORDER BY position`;
      expect(committed.map((row) => row.aggregate)).toEqual(['visible', 'after']);
      expect(await readModel(prefix)).toEqual(['done']);
      expect(crashes).toEqual([]);
    } finally {
      process.off('uncaughtException', onCrash);
      process.off('unhandledRejection', onCrash);
      await held.end();
      await backend.close();
    }
  });

  it('validates its arguments', async () => {
    const { backend } = open();
    try {
      const noop = async () => undefined;
      await expect(backend.saveProjectionWith('', 'h', 0, {}, 1_000, noop)).rejects.toThrow(/projection name/);
      await expect(backend.saveProjectionWith('p', '', 0, {}, 1_000, noop)).rejects.toThrow(/holder/);
      await expect(backend.saveProjectionWith('p', 'h', -1, {}, 1_000, noop)).rejects.toThrow(/generation/);
      await expect(backend.saveProjectionWith('p', 'h', 0, {}, 0, noop)).rejects.toThrow(/leaseMs/);
      await expect(backend.saveProjectionWith('p', 'h', 0, {}, 1_000, 'work' as never)).rejects.toThrow(/work/);
    } finally {
      await backend.close();
    }
  });
});

describe('a transactional projection (store.project with transactional: true)', () => {
  it('writes the read model through the batch transaction: every event exactly once, failed batches leave nothing', async () => {
    const { prefix } = open();
    const stores = [0, 1].map(() => createStore(new PostgresBackend({ url: serverUrl(), prefix, maxConns: 3 })));
    const [writer, other] = stores as [ReturnType<typeof createStore>, ReturnType<typeof createStore>];
    const failedOnce = new Set<string>();
    const handler = async (event: Event, context: { transaction: unknown }) => {
      const tx = context.transaction as TransactionSql;
      const key = `${event.aggregateId.join('/')}#${event.sequence}`;
      await tx`INSERT INTO ${tx(READ_MODEL)} (prefix, k) VALUES (${prefix}, ${key})`;
      // Sequences 2 and 7 fail once, after their row was written: the batch must roll back.
      if (event.sequence % 5 === 2 && !failedOnce.has(key)) {
        failedOnce.add(key);
        throw new Error(`first attempt at ${key} fails`);
      }
    };
    const options = {
      transactional: true,
      batchSize: 4,
      leaseMs: 2_000,
      retry: { initialDelayMs: 5, maxDelayMs: 20 },
      onError: () => undefined,
    };
    try {
      const first = writer.project('rm', handler, options);
      const second = other.project('rm', handler, options);
      await within(
        15_000,
        'appends',
        prefix,
        Promise.all(
          [0, 1, 2, 3].map(async (i) => {
            for (let s = 0; s < 8; s++) await writer.appendEvents(['agg', `${i}`], s, [{ type: 'T', data: { s } }]);
          }),
        ),
      );
      await within(15_000, 'caughtUp', prefix, first.caughtUp());
      expect([first.active, second.active].filter(Boolean)).toHaveLength(1);
      const expected = [0, 1, 2, 3].flatMap((i) => Array.from({ length: 8 }, (_, s) => `agg/${i}#${s}`)).sort();
      expect(await readModel(prefix)).toEqual(expected);
      expect(failedOnce.size).toBe(8);
      await within(10_000, 'stop', prefix, Promise.all([first.stop(), second.stop()]));
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });
});
