import { afterAll, describe, expect, it } from 'vitest';
import { PostgresBackend, PostgresBackendError } from '../src/index.js';
import { adminSql, deletePrefix, randomPrefix, serverUrl } from './helpers.js';

const admin = adminSql();
afterAll(() => admin.end());

type Outcome = { ok: true } | { ok: false; error: unknown } | { hung: true };

/** Waits for `call` to settle, up to a generous bound: a call that never settles is a finding. */
function settle(call: () => Promise<unknown>, ms = 30_000): Promise<Outcome> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ hung: true }), ms);
    call().then(
      () => (clearTimeout(timer), resolve({ ok: true })),
      (error: unknown) => (clearTimeout(timer), resolve({ ok: false, error })),
    );
  });
}

describe('connection churn', () => {
  // Two ways postgres.js 3.4 crashed the process when the server ended a connection: with
  // fetch_types on (its default) it sends a catalog query first on every new connection and drops
  // its promise, so a connection terminated during that query rejected it unhandled
  // (porsager/postgres#1192); and `sql.begin`, which the schema step used, sends ROLLBACK on a
  // connection that died mid-transaction and throws a TypeError from a timer. This opens many
  // fresh pools (each running the schema step) while another connection terminates them as fast
  // as it can.
  it('settles every call with success or PostgresBackendError, and rejects nothing unhandled, while new connections are terminated', async () => {
    const prefix = randomPrefix('churn');
    const applicationName = `timebox-churn-${prefix.slice(-12)}`;
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
    // Create the schema first, out of the killer's reach, so the rounds exercise plain calls.
    const setup = new PostgresBackend({ url: serverUrl(), prefix, maxConns: 1 });
    await setup.ready();
    await setup.close();

    const outcomes: Outcome[] = [];
    const backends: PostgresBackend[] = [];
    let running = true;
    let terminated = 0;
    try {
      const killer = (async () => {
        while (running) {
          const killed = await admin`
            SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = ${applicationName} AND pid <> pg_backend_pid()`;
          terminated += killed.length;
          // Yield to the event loop only: the kills must land in a new connection's first
          // statement, a window of about a millisecond.
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();

      const worker = async (w: number) => {
        for (let round = 0; round < 6; round++) {
          // A new pool per round: every connection it opens is a new server session.
          const backend = new PostgresBackend({
            url: serverUrl(),
            prefix,
            maxConns: 2,
            postgres: { connection: { application_name: applicationName } },
          });
          const id = ['churn', String(w), String(round)];
          const event = { type: 'T', sequence: 0, timestamp: round, data: '{}' };
          outcomes.push(
            ...(await Promise.all([
              settle(() => backend.append({ id, expectedSequence: 0, events: [event] })),
              settle(() => backend.loadEvents(id, 0)),
              settle(() => backend.listAggregates(['churn', String(w)], { limit: 100 })),
            ])),
          );
          outcomes.push(await settle(() => backend.loadSnapshot(id)));
          backends.push(backend);
        }
      };
      await Promise.all(Array.from({ length: 4 }, (_, w) => worker(w)));
      running = false;
      await killer;
      outcomes.push(...(await Promise.all(backends.map((backend) => settle(() => backend.close())))));
      // A dropped promise's rejection is reported once the microtask queue drains: give it a turn.
      await new Promise((resolve) => setTimeout(resolve, 200));

      expect(unhandled).toEqual([]);
      expect(outcomes.filter((outcome) => 'hung' in outcome)).toEqual([]);
      const failures = outcomes.flatMap((outcome) => ('error' in outcome ? [outcome.error] : []));
      for (const failure of failures) {
        expect(failure).toBeInstanceOf(PostgresBackendError);
        expect((failure as PostgresBackendError).connectionLost, String(failure)).toBe(true);
      }
      // The faults must actually have hit, and calls must have got through between them.
      expect(terminated).toBeGreaterThan(0);
      expect(failures.length).toBeGreaterThan(0);
      expect(outcomes.filter((outcome) => 'ok' in outcome && outcome.ok).length).toBeGreaterThan(0);
    } finally {
      running = false;
      process.off('unhandledRejection', onUnhandled);
      process.off('uncaughtException', onUnhandled);
      await deletePrefix(admin, prefix);
    }
  }, 120_000);
});
