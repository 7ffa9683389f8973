import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { createExecutor, type Event, type SubscriptionError } from '@timebox/core';
import { expectHubPattern } from '@timebox/core/conformance';
import { afterAll, describe, expect, it } from 'vitest';
import { createPostgresStore } from '../src/index.js';
import { adminSql, appendFirst, deletePrefix, eventually, randomPrefix, serverUrl } from './helpers.js';

const writerScript = fileURLToPath(new URL('./support/hub-writer.ts', import.meta.url));
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const admin = adminSql();
const prefixes: string[] = [];
afterAll(async () => {
  for (const prefix of prefixes) await deletePrefix(admin, prefix);
  await admin.end();
});

function prefix(label: string): string {
  const fresh = randomPrefix(label);
  prefixes.push(fresh);
  return fresh;
}

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

/** Terminates the server side of every LISTEN connection on the feed channel, as a network fault would. */
async function killFeedListeners(): Promise<number> {
  const killed = await admin<{ pid: number }[]>`
    SELECT pg_terminate_backend(pid), pid FROM pg_stat_activity
     WHERE pid <> pg_backend_pid() AND query ILIKE 'listen%timebox_feed%'`;
  return killed.length;
}

describe('postgres event feed', () => {
  it('a new subscriber gets only what is appended after it subscribed, not the feed rows already there', async () => {
    // postgres.js calls LISTEN's onlisten hook for the first LISTEN too; a read woken by it before
    // the opening read had marked the existing rows delivered the whole feed.
    const p = prefix('feed-start');
    const writer = createPostgresStore({}, { url: serverUrl(), prefix: p, maxConns: 2 });
    const reader = createPostgresStore({}, { url: serverUrl(), prefix: p, maxConns: 2 });
    for (let i = 0; i < 5; i++) await writer.appendEvents(['old', `${i}`], 0, [{ type: 'Before', data: {} }]);
    const got = recorder();
    await reader.subscribe(got.handler, { onError: got.onError });
    await writer.appendEvents(['new'], 0, [{ type: 'After', data: {} }]);
    expect(await eventually(() => got.events.length >= 1)).toBe(true);
    // One more append, read after it, so a late delivery of the old rows would have shown up by now.
    await writer.appendEvents(['new'], 1, [{ type: 'After', data: {} }]);
    expect(await eventually(() => got.events.length >= 2)).toBe(true);
    expect(got.events.map((event) => `${event.aggregateId.join('/')}#${event.sequence}`)).toEqual(['new#0', 'new#1']);
    expect(got.errors).toEqual([]);
    await Promise.all([reader.close(), writer.close()]);
  });

  it('a subscriber whose LISTEN connection dropped resumes where it was, losing nothing', { timeout: 60_000 }, async () => {
    const p = prefix('feed');
    const reader = createPostgresStore({}, { url: serverUrl(), prefix: p, maxConns: 2 });
    const writer = createPostgresStore({}, { url: serverUrl(), prefix: p, maxConns: 2 });
    const got = recorder();
    await reader.subscribe(got.handler, { onError: got.onError });
    await writer.appendEvents(['r'], 0, [{ type: 'Before', data: {} }]);
    expect(await eventually(() => got.events.length === 1)).toBe(true);
    expect(await killFeedListeners()).toBeGreaterThanOrEqual(1);
    for (let i = 1; i <= 20; i++) await writer.appendEvents(['r'], i, [{ type: 'While', data: { i } }]);
    expect(await eventually(() => got.events.length >= 21, 30_000)).toBe(true);
    expect(got.events.map((event) => event.sequence)).toEqual(Array.from({ length: 21 }, (_, i) => i));
    expect(got.errors).toEqual([]);
    await Promise.all([reader.close(), writer.close()]);
  });

  it('keeps per-aggregate order with many writers racing on few aggregates', { timeout: 60_000 }, async () => {
    const p = prefix('race');
    type Counted = { Counted: { writer: number } };
    const reader = createPostgresStore({}, { url: serverUrl(), prefix: p, maxConns: 2 });
    const got = recorder();
    await reader.subscribe(got.handler, { onError: got.onError });
    const writers = Array.from({ length: 4 }, () =>
      createPostgresStore<Counted>({ maxRetries: 1000 }, { url: serverUrl(), prefix: p, maxConns: 4 }),
    );
    const perWriter = 40;
    await Promise.all(
      writers.map(async (store, writer) => {
        const executor = createExecutor<number, Counted>(store, { initialState: () => 0, appliers: { Counted: (n) => n + 1 } });
        await Promise.all(
          Array.from({ length: perWriter }, (_, i) => executor.exec(['race', String(i % 3)], (_, agg) => agg.raise('Counted', { writer }))),
        );
      }),
    );
    const total = writers.length * perWriter;
    expect(await eventually(() => got.events.length >= total, 30_000)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(got.events).toHaveLength(total);
    for (const part of ['0', '1', '2']) {
      const sequences = got.events.filter((event) => event.aggregateId[1] === part).map((event) => event.sequence);
      expect(sequences).toEqual(Array.from({ length: sequences.length }, (_, i) => i));
    }
    expect(got.errors).toEqual([]);
    await Promise.all([reader.close(), ...writers.map((store) => store.close())]);
  });

  it('reports events trimmed by a snapshot before it read them, and delivers the rest', { timeout: 30_000 }, async () => {
    const p = prefix('trimmed');
    const reader = createPostgresStore({}, { url: serverUrl(), prefix: p, maxConns: 2 });
    const got = recorder();
    await reader.subscribe(got.handler, { onError: got.onError });
    let last = 0;
    await admin.begin(async (tx) => {
      last = (
        await appendFirst(tx, p, 't', [
          ['A', 1, '0'],
          ['A', 2, '1'],
          ['A', 3, '2'],
        ])
      )[1]!;
      await tx`SELECT timebox_save_snapshot(${p}, 't', 2, '{}', true)`;
    });
    expect(await eventually(() => got.events.length > 0)).toBe(true);
    // One more append, read after it, so anything else would have shown up by now.
    await reader.appendEvents(['later'], 0, [{ type: 'B', data: {} }]);
    expect(await eventually(() => got.events.length >= 2)).toBe(true);
    expect(got.events.map((event) => `${event.aggregateId.join('/')}#${event.sequence}`)).toEqual(['t#2', 'later#0']);
    expect(got.errors.map((error) => error.code)).toEqual(['HUB_GAP']);
    expect(got.errors[0]!.message).toContain(`events of ["t"] up to position ${last} were trimmed`);
    await reader.close();
  });

  it('reports an aggregate archived before it read its events, and nothing for one archived after', { timeout: 30_000 }, async () => {
    const p = prefix('archived');
    const store = createPostgresStore({}, { url: serverUrl(), prefix: p, maxConns: 2 });
    const got = recorder();
    await store.subscribe(got.handler, { onError: got.onError });
    // Read first, then archived: the subscriber saw every event, so there is nothing to report.
    await store.appendEvents(['seen'], 0, [{ type: 'A', data: {} }]);
    expect(await eventually(() => got.events.length === 1)).toBe(true);
    await store.archive(['seen']);
    // Appended and archived in one transaction: the subscriber can never read these events.
    await admin.begin(async (tx) => {
      await appendFirst(tx, p, 'gone', [
        ['A', 1, '{}'],
        ['A', 2, '{}'],
      ]);
      await tx`SELECT timebox_archive_aggregate(${p}, 'gone')`;
    });
    await store.appendEvents(['after'], 0, [{ type: 'B', data: {} }]);
    expect(await eventually(() => got.events.length >= 2)).toBe(true);
    expect(got.events.map((event) => `${event.aggregateId.join('/')}#${event.sequence}`)).toEqual(['seen#0', 'after#0']);
    expect(got.errors.map((error) => error.message)).toEqual([expect.stringContaining('events of ["gone"] up to position')]);
    await store.close();
  });

  it('never passes over an append that took its position early and committed late', { timeout: 30_000 }, async () => {
    const p = prefix('late');
    const store = createPostgresStore({}, { url: serverUrl(), prefix: p, maxConns: 2 });
    const got = recorder();
    await store.subscribe(got.handler, { onError: got.onError });
    const held = postgres(serverUrl(), { max: 1, onnotice: () => undefined });
    try {
      await held`BEGIN`;
      const [early] = await appendFirst(held, p, 'early', [['Early', 1, '{}']]);
      // Takes a higher position and commits first; the reader must not move past the held one.
      const [late] = await store.appendEvents(['late'], 0, [{ type: 'Late', data: {} }]);
      expect(late!.position).toBeGreaterThan(early!);
      await held`COMMIT`;
      expect(await eventually(() => got.events.length >= 2)).toBe(true);
      expect(got.events.map((event) => `${event.aggregateId.join('/')}@${event.position}`)).toEqual([
        `early@${early}`,
        `late@${late!.position}`,
      ]);
      expect(got.errors).toEqual([]);
    } finally {
      await held.end();
      await store.close();
    }
  });

  it('reads the feed on a connection of its own, never one of the pool the appends use', { timeout: 30_000 }, async () => {
    const p = prefix('own-connection');
    const pool = postgres(serverUrl(), { max: 1, onnotice: () => undefined, fetch_types: false });
    const store = createPostgresStore({}, { sql: pool, prefix: p });
    const held = postgres(serverUrl(), { max: 1, onnotice: () => undefined });
    try {
      const poolPid = (await pool<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`)[0]!.pid;
      await store.subscribe(() => undefined);
      // An append holds its position open, so the reader's next read waits server-side for it.
      await held`BEGIN`;
      await appendFirst(held, p, 'held', [['T', 1, '{}']]);
      await store.appendEvents(['wake'], 0, [{ type: 'T', data: {} }]);
      const reading = async () =>
        (
          await admin<{ pid: number }[]>`
          SELECT pid FROM pg_stat_activity WHERE query LIKE '%timebox_read_log(%' AND wait_event = 'PgSleep' AND pid <> pg_backend_pid()`
        ).map((row) => row.pid);
      expect(await eventually(async () => (await reading()).length > 0)).toBe(true);
      expect(await reading()).not.toContain(poolPid);
      // And the pool serves appends meanwhile.
      await store.appendEvents(['more'], 0, [{ type: 'T', data: {} }]);
      await held`ROLLBACK`;
    } finally {
      await held.end();
      await store.close();
      await pool.end();
    }
  });

  it('appends notify only while a subscriber holds a listener lease', { timeout: 30_000 }, async () => {
    const p = prefix('lease');
    const hash = createHash('md5').update(p).digest('hex');
    let notified = 0;
    const listening = await admin.listen('timebox_feed', (payload) => {
      if (payload === hash) notified++;
    });
    const store = createPostgresStore({}, { url: serverUrl(), prefix: p, maxConns: 2 });
    await store.appendEvents(['n'], 0, [{ type: 'Quiet', data: {} }]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(notified).toBe(0);
    const stop = await store.subscribe(() => undefined);
    expect(await admin`SELECT 1 FROM timebox_feed_listener WHERE prefix = ${p} AND expires_at > now()`).toHaveLength(1);
    await store.appendEvents(['n'], 1, [{ type: 'Heard', data: {} }]);
    expect(await eventually(() => notified === 1)).toBe(true);
    await stop();
    expect(await admin`SELECT 1 FROM timebox_feed_listener WHERE prefix = ${p}`).toHaveLength(0);
    // An expired lease (its subscriber died without removing it) stops the notifications too.
    await admin`INSERT INTO timebox_feed_listener (prefix, listener, expires_at) VALUES (${p}, 'dead', now() - interval '1 second')`;
    await store.appendEvents(['n'], 2, [{ type: 'Quiet', data: {} }]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(notified).toBe(1);
    await listening.unlisten();
    await store.close();
  });
});

describe('two OS processes over one PostgreSQL', () => {
  it('every event appended by one is delivered to the other, exactly once and in order per aggregate', { timeout: 120_000 }, async () => {
    const p = prefix('processes');
    const reader = createPostgresStore({}, { url: serverUrl(), prefix: p, maxConns: 2 });
    const got = recorder();
    await reader.subscribe(got.handler, { onError: got.onError });
    const aggregates = 20;
    const rounds = 25;
    const output = await new Promise<string>((resolve, reject) => {
      execFile(
        'npx',
        ['tsx', writerScript, serverUrl(), p, String(aggregates), String(rounds)],
        { cwd: packageDir },
        (error, stdout, stderr) => (error ? reject(new Error(`writer process failed: ${stderr || error.message}`)) : resolve(stdout)),
      );
    });
    const { pid, counts } = JSON.parse(output.trim().split('\n').at(-1) as string) as { pid: number; counts: number[] };
    const total = counts.reduce((sum, n) => sum + n, 0);
    expect(await eventually(() => got.events.length >= total, 30_000)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expectHubPattern(got.events, counts, pid);
    expect(pid).not.toBe(process.pid);
    expect(got.errors).toEqual([]);
    await reader.close();
  });
});
