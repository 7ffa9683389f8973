/**
 * The settled log (README: Positions and the log). Positions come from one global sequence, but
 * appends commit in another order; a reader must never pass a position whose transaction is still
 * running. These tests hold appends open in explicit transactions on their own connections, let
 * later appends commit first, and page through the log meanwhile.
 */
import type { Sql } from 'postgres';
import postgres from 'postgres';
import type { LogEntry, LogPage } from '@timebox/core';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresBackend } from '../src/index.js';
import { aggregateKey } from '../src/text-codec.js';
import { adminSql, appendFirst, deletePrefix, eventually, randomPrefix, serverUrl } from './helpers.js';

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

/** A seeded PRNG (mulberry32), so a failing round can be replayed from its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function currentXid(sql: Sql): Promise<string> {
  const rows = await sql<{ xid: string }[]>`SELECT pg_current_xact_id()::text AS xid`;
  return rows[0]!.xid;
}

/** One connection of its own, so BEGIN and COMMIT sent as plain statements land on it. */
function session1(): Sql {
  return postgres(serverUrl(), { max: 1, onnotice: () => undefined });
}

class Abort extends Error {}

/** An append made inside an explicit transaction that stays open until `finish` commits or aborts it. */
interface OpenAppend {
  readonly positions: number[];
  readonly type: string;
  finish(commit: boolean): Promise<void>;
}

/** BEGIN; an append — and the transaction stays open (its connection reserved by `sql.begin`). */
async function openAppend(sql: Sql, storePrefix: string, id: string[], type: string, count = 1): Promise<OpenAppend> {
  let decide!: (commit: boolean) => void;
  const decision = new Promise<boolean>((resolve) => (decide = resolve));
  let opened!: (positions: number[]) => void;
  let failed!: (error: unknown) => void;
  const ready = new Promise<number[]>((resolve, reject) => {
    opened = resolve;
    failed = reject;
  });
  const batch = Array.from({ length: count }, (_, i): [string, number, string] => [type, 1_000 + i, JSON.stringify({ i })]);
  const done = sql
    .begin(async (tx) => {
      opened(await appendFirst(tx, storePrefix, aggregateKey(id), batch));
      if (!(await decision)) throw new Abort('aborted by the test');
    })
    .then(
      () => undefined,
      (error: unknown) => {
        if (!(error instanceof Abort)) {
          failed(error);
          throw error;
        }
      },
    );
  const positions = await ready;
  const append: OpenAppend = {
    positions,
    type,
    finish: async (commit) => {
      decide(commit);
      unfinished.delete(append);
      await done;
    },
  };
  unfinished.add(append);
  return append;
}

/** Appends still open; a failed test aborts them, so that its connections can end. */
const unfinished = new Set<OpenAppend>();
async function abortUnfinished(): Promise<void> {
  await Promise.all([...unfinished].map((append) => append.finish(false).catch(() => undefined)));
}

/** What a reader saw, checked page by page: never a position at or below one it already passed. */
class CheckedReader {
  readonly seen: LogEntry[] = [];
  after = 0;
  pages = 0;

  constructor(
    readonly backend: PostgresBackend,
    readonly options: { types?: string[]; prefix?: string[] } = {},
  ) {}

  async page(limit: number): Promise<LogPage> {
    const page = await this.backend.readLog({ after: [this.after], limit, ...this.options });
    this.pages++;
    let previous = this.after;
    for (const entry of page.entries) {
      expect(entry.event.position, 'a page goes forward, past what was read').toBeGreaterThan(previous);
      previous = entry.event.position;
    }
    expect(page.entries.length).toBeLessThanOrEqual(limit);
    expect(page.after[0], "a page's after covers its entries").toBeGreaterThanOrEqual(previous);
    this.seen.push(...page.entries);
    this.after = page.after[0] as number;
    return page;
  }

  /**
   * Pages until, once `target()` is known (the writers are done), a page reports the end at or
   * past it.
   */
  async follow(nextLimit: () => number, target: () => number | undefined): Promise<void> {
    for (;;) {
      const last = target();
      const page = await this.page(nextLimit());
      if (last !== undefined && page.end && this.after >= last) return;
    }
  }
}

interface StoredRow {
  aggregate: string;
  sequence: number;
  type: string;
  data: string;
  position: number;
}

async function storedLog(storePrefix: string): Promise<StoredRow[]> {
  return admin<StoredRow[]>`
    SELECT aggregate, sequence::float8 AS sequence, type, data, position::float8 AS position
      FROM timebox_events WHERE prefix = ${storePrefix} ORDER BY position`;
}

function summary(entries: readonly LogEntry[]): string[] {
  return entries.map((e) => `${aggregateKey(e.id)}#${e.event.sequence}@${e.event.position}:${e.event.type}`);
}

describe('settled log reads', () => {
  it('pg_current_snapshot() in a plpgsql statement is that statement’s snapshot, new for each statement', async () => {
    // The settle protocol depends on both: each statement of timebox_log_settle sees commits that
    // happened before it, and pg_current_snapshot() there describes exactly what it sees.
    const p = prefix('snapshot');
    const session = postgres(serverUrl(), { max: 1, onnotice: () => undefined });
    const lockKey = Math.floor(Math.random() * 1e9);
    const backend = new PostgresBackend({ url: serverUrl(), prefix: p, maxConns: 1 });
    try {
      await backend.ready();
      await session`
        CREATE FUNCTION pg_temp.snapshot_probe(p_prefix text, p_key bigint)
        RETURNS TABLE (s1 text, s2 text, c1 bigint, c2 bigint) LANGUAGE plpgsql AS $$
        DECLARE a text; b text; x bigint; y bigint;
        BEGIN
          SELECT pg_current_snapshot()::text, (SELECT count(*) FROM timebox_events WHERE prefix = p_prefix) INTO a, x;
          PERFORM pg_advisory_lock(p_key);
          PERFORM pg_advisory_unlock(p_key);
          SELECT pg_current_snapshot()::text, (SELECT count(*) FROM timebox_events WHERE prefix = p_prefix) INTO b, y;
          RETURN QUERY SELECT a, b, x, y;
        END $$`;
      const holder = session1();
      await holder`SELECT pg_advisory_lock(${lockKey})`;
      const probe = session<
        { s1: string; s2: string; c1: string; c2: string }[]
      >`SELECT * FROM pg_temp.snapshot_probe(${p}, ${lockKey})`.then((rows) => rows[0]!);
      // The probe took its first snapshot and now waits for the advisory lock.
      expect(
        await eventually(async () => {
          const waiting = await admin`SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = ${lockKey} AND NOT granted`;
          return waiting.length === 1;
        }),
      ).toBe(true);
      // A write that commits while the probe waits, and its transaction ID.
      const write = session1();
      await write`BEGIN`;
      await appendFirst(write, p, 'w', [['T', 1, '{}']]);
      const xid = await currentXid(write);
      await write`COMMIT`;
      await write.end();
      await holder`SELECT pg_advisory_unlock(${lockKey})`;
      await holder.end();
      const { s1, s2, c1, c2 } = await probe;
      expect([Number(c1), Number(c2)]).toEqual([0, 1]);
      const [visible] = await admin<{ before: boolean; after: boolean }[]>`
        SELECT pg_visible_in_snapshot(${xid}::xid8, ${s1}::pg_snapshot) AS before,
               pg_visible_in_snapshot(${xid}::xid8, ${s2}::pg_snapshot) AS after`;
      expect(visible).toEqual({ before: false, after: true });
    } finally {
      await session.end();
      await backend.close();
    }
  });

  it('does not pass a position held by a transaction whose ID is at or above the reader snapshot’s xmax', async () => {
    // T_a takes its transaction ID first, T_b second; T_b takes position q, T_a takes q+1 and
    // commits. A snapshot taken now has xmax = T_a + 1 (while nothing newer completed), so T_b is
    // not in its xip list, yet it is running and holds q: a reader trusting xip(S) passes q.
    const p = prefix('xmax');
    const backend = new PostgresBackend({ url: serverUrl(), prefix: p, maxConns: 2 });
    let from = 0;
    let holeSeen = 0;
    try {
      await backend.ready();
      for (let attempt = 0; attempt < 20 && holeSeen < 3; attempt++) {
        const a = session1();
        const b = session1();
        try {
          await a`BEGIN`;
          await b`BEGIN`;
          const xidA = await currentXid(a);
          const xidB = await currentXid(b);
          const append = async (tx: Sql, id: string) => (await appendFirst(tx, p, id, [['T', 1, '{}']]))[0]!;
          const q = await append(b, `b${attempt}`);
          const qa = await append(a, `a${attempt}`);
          expect(qa).toBeGreaterThan(q);
          await a`COMMIT`;
          const page = await backend.readLog({ after: [from], limit: 100 });
          const [row] = await admin<{ xmax: string }[]>`SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS xmax`;
          const xmax = row!.xmax;
          // xmax only grows: if it is still at or below T_b's ID now, it was during the read.
          if (BigInt(xmax) <= BigInt(xidB) && BigInt(xidA) < BigInt(xidB)) holeSeen++;
          expect(page.after[0], `after ${from}, T_b holds ${q}`).toBeLessThan(q);
          for (const entry of page.entries) expect(entry.event.position).toBeLessThan(q);
          await b`COMMIT`;
          const settled = await backend.readLog({ after: page.after, limit: 100 });
          expect(settled.entries.map((e) => e.event.position)).toEqual([q, qa]);
          from = settled.after[0] as number;
        } finally {
          await Promise.all([a.end(), b.end()]);
        }
      }
      // The case must have arisen (unless other sessions on the server kept completing transactions).
      expect(holeSeen).toBeGreaterThan(0);
    } finally {
      await backend.close();
    }
  });

  it('a reader paging while slow and fast appends interleave sees every committed event once, in order, never below where it was', async () => {
    const seed = Number(process.env.TIMEBOX_SEED ?? Date.now() % 1_000_000);
    const rnd = random(seed);
    const pick = (n: number) => Math.floor(rnd() * n);
    const p = prefix('settle');
    const writer = new PostgresBackend({ url: serverUrl(), prefix: p, maxConns: 4 });
    const readerBackend = new PostgresBackend({ url: serverUrl(), prefix: p, maxConns: 4 });
    const slowSql = postgres(serverUrl(), { max: 6, onnotice: () => undefined });
    const all = new CheckedReader(readerBackend);
    const onlyB = new CheckedReader(readerBackend, { types: ['B'] });
    const onlySlow = new CheckedReader(readerBackend, { prefix: ['slow'] });
    let done: number | undefined;
    const committedPositions: number[] = [];
    const abortedPositions: number[] = [];
    let fastCount = 0;
    const fastAppend = async (round: number) => {
      const id = ['fast', `${round}`, `${fastCount++}`];
      const type = pick(2) === 0 ? 'A' : 'B';
      const result = await writer.append({ id, expectedSequence: 0, events: [{ type, sequence: 0, timestamp: 1, data: '{}' }] });
      if (!result.ok) throw new Error('fast append conflicted');
      committedPositions.push(...result.positions);
    };
    try {
      await Promise.all([writer.ready(), readerBackend.ready()]);
      // Filtered readers too move past what they skip, so all of them page up to the last position.
      const readers = Promise.all([
        all.follow(
          () => 1 + pick(6),
          () => done,
        ),
        onlyB.follow(
          () => 1 + pick(3),
          () => done,
        ),
        onlySlow.follow(
          () => 1 + pick(4),
          () => done,
        ),
      ]);
      for (let round = 0; round < 6; round++) {
        const settledBefore = Math.max(0, ...committedPositions, ...abortedPositions);
        const slow: OpenAppend[] = [];
        const slowCount = 1 + pick(4);
        for (let i = 0; i < slowCount; i++) {
          slow.push(await openAppend(slowSql, p, ['slow', `${round}`, `${i}`], pick(2) === 0 ? 'A' : 'B', 1 + pick(3)));
          for (let f = pick(3); f > 0; f--) await fastAppend(round);
        }
        // Later appends commit first.
        for (let f = 1 + pick(4); f > 0; f--) await fastAppend(round);
        const lowestOpen = Math.min(...slow.flatMap((s) => s.positions));
        expect(Math.max(...committedPositions)).toBeGreaterThan(lowestOpen);
        // A reader from before the round cannot get to the lowest position still held open.
        const probe = await readerBackend.readLog({ after: [settledBefore], limit: 10_000 });
        expect(probe.after[0], `seed ${seed}, round ${round}`).toBeLessThan(lowestOpen);
        for (const entry of probe.entries) expect(entry.event.position).toBeLessThan(lowestOpen);
        // Commit or abort the slow ones in a random order, with fast appends in between.
        while (slow.length > 0) {
          const [next] = slow.splice(pick(slow.length), 1) as [OpenAppend];
          // At least one abort, in the first round; then one in three.
          const commit = round === 0 && abortedPositions.length === 0 ? false : pick(3) !== 0;
          await next.finish(commit);
          (commit ? committedPositions : abortedPositions).push(...next.positions);
          for (let f = pick(2); f > 0; f--) await fastAppend(round);
        }
      }
      done = Math.max(...committedPositions);
      await readers;

      const stored = await storedLog(p);
      expect(stored.map((row) => row.position).sort((x, y) => x - y)).toEqual([...committedPositions].sort((x, y) => x - y));
      for (const position of abortedPositions) expect(stored.some((row) => row.position === position)).toBe(false);
      const expected = stored.map((row) => `${row.aggregate}#${row.sequence}@${row.position}:${row.type}`);
      expect(summary(all.seen), `seed ${seed}`).toEqual(expected);
      expect(summary(onlyB.seen), `seed ${seed}`).toEqual(expected.filter((line) => line.endsWith(':B')));
      expect(summary(onlySlow.seen), `seed ${seed}`).toEqual(expected.filter((line) => line.startsWith('slow:')));
      // Every reader got to the last position, past every aborted gap.
      for (const reader of [all, onlyB, onlySlow]) expect(reader.after).toBe(done);
      expect(all.pages).toBeGreaterThan(6);
      await expect(readerBackend.logHead()).resolves.toEqual([Math.max(...committedPositions)]);
    } finally {
      done ??= 0;
      await abortUnfinished();
      await slowSql.end();
      await Promise.all([writer.close(), readerBackend.close()]);
    }
  }, 120_000);

  it('an aborted append leaves a gap that readers get past for good', async () => {
    const p = prefix('gap');
    const backend = new PostgresBackend({ url: serverUrl(), prefix: p, maxConns: 3 });
    const sql = postgres(serverUrl(), { max: 2, onnotice: () => undefined });
    try {
      await backend.ready();
      const slow = await openAppend(sql, p, ['slow'], 'A', 2);
      const fast = await backend.append({
        id: ['fast'],
        expectedSequence: 0,
        events: [{ type: 'A', sequence: 0, timestamp: 1, data: '{}' }],
      });
      const fastPositions = fast.ok ? fast.positions : [];
      expect(fastPositions[0]).toBeGreaterThan(Math.max(...slow.positions));
      const blocked = await backend.readLog({ after: [0], limit: 10 });
      expect(blocked).toEqual({ entries: [], after: [0], end: true });
      await slow.finish(false);
      const page = await backend.readLog({ after: [0], limit: 10 });
      expect(page.entries.map((e) => e.event.position)).toEqual(fastPositions);
      expect(page.after).toEqual(fastPositions);
      expect(page.end).toBe(true);
      // The gap is permanent: later appends take higher positions, and the aborted ones never appear.
      const later = await backend.append({
        id: ['slow'],
        expectedSequence: 0,
        events: [{ type: 'A', sequence: 0, timestamp: 2, data: '{}' }],
      });
      const again = await backend.readLog({ after: page.after, limit: 10 });
      expect(again.entries.map((e) => e.event.position)).toEqual(later.ok ? later.positions : []);
      const everything = await backend.readLog({ after: [0], limit: 10 });
      for (const entry of everything.entries) expect(slow.positions).not.toContain(entry.event.position);
    } finally {
      await abortUnfinished();
      await sql.end();
      await backend.close();
    }
  });

  it('appends do not wait for a reader that waits for an open append', async () => {
    const p = prefix('nowait');
    const reader = new PostgresBackend({ url: serverUrl(), prefix: p, maxConns: 2 });
    const writer = new PostgresBackend({ url: serverUrl(), prefix: p, maxConns: 4 });
    const sql = postgres(serverUrl(), { max: 1, onnotice: () => undefined });
    try {
      await Promise.all([reader.ready(), writer.ready()]);
      await writer.append({ id: ['before'], expectedSequence: 0, events: [{ type: 'A', sequence: 0, timestamp: 0, data: '{}' }] });
      const slow = await openAppend(sql, p, ['slow'], 'A');
      // logHead waits (server-side, round after round) until the open append ends.
      let headSettled = false;
      const head = reader.logHead().then((value) => {
        headSettled = true;
        return value;
      });
      expect(
        await eventually(async () => {
          const sleeping = await admin`
            SELECT 1 FROM pg_stat_activity
             WHERE pid <> pg_backend_pid() AND query LIKE '%timebox_log_head%' AND wait_event = 'PgSleep'`;
          return sleeping.length > 0;
        }),
      ).toBe(true);
      // Meanwhile appends, to new and existing aggregates, all go through.
      const positions: number[] = [];
      for (let i = 0; i < 40; i++) {
        const result = await writer.append({
          id: ['busy', `${i % 5}`],
          expectedSequence: Math.floor(i / 5),
          events: [{ type: 'B', sequence: Math.floor(i / 5), timestamp: i, data: '{}' }],
        });
        expect(result.ok).toBe(true);
        if (result.ok) positions.push(...result.positions);
      }
      expect(headSettled, 'the reader is still waiting for the open append').toBe(false);
      await slow.finish(true);
      // The head that settled (its round may have started before some of those appends) is final:
      // reading on from it finds exactly the events above it, the one held open included.
      const [settledHead] = (await head) as [number];
      const all = [...slow.positions, ...positions].sort((x, y) => x - y);
      expect(settledHead).toBeLessThanOrEqual(all[all.length - 1]!);
      const rest = await reader.readLog({ after: [settledHead], limit: 100 });
      expect(rest.entries.map((e) => e.event.position)).toEqual(all.filter((position) => position > settledHead));
    } finally {
      await abortUnfinished();
      await sql.end();
      await Promise.all([reader.close(), writer.close()]);
    }
  });

  it('a filtered page moves past non-matching events only within the settled range', async () => {
    const p = prefix('filter');
    const backend = new PostgresBackend({ url: serverUrl(), prefix: p, maxConns: 3 });
    const sql = postgres(serverUrl(), { max: 1, onnotice: () => undefined });
    try {
      await backend.ready();
      const append = async (id: string[], type: string) => {
        const result = await backend.append({ id, expectedSequence: 0, events: [{ type, sequence: 0, timestamp: 1, data: '{}' }] });
        return result.ok ? (result.positions[0] as number) : -1;
      };
      const x1 = await append(['x', '1'], 'X');
      const slow = await openAppend(sql, p, ['y', 'slow'], 'Y');
      const x2 = await append(['x', '2'], 'X');
      // Only X events after x1 are wanted; x2 is committed, but the open Y append sits below it.
      const first = await backend.readLog({ after: [0], limit: 10, types: ['Y'] });
      expect(first).toEqual({ entries: [], after: [0], end: true });
      await slow.finish(true);
      const ys = await backend.readLog({ after: [0], limit: 10, types: ['Y'] });
      expect(ys.entries.map((e) => e.event.position)).toEqual(slow.positions);
      // Past the non-matching x2, which is settled now.
      expect(ys.after).toEqual([x2]);
      const xs = await backend.readLog({ after: [0], limit: 1, prefix: ['x'] });
      expect(xs.entries.map((e) => e.event.position)).toEqual([x1]);
      expect(xs.after).toEqual([x1]);
      expect(xs.end).toBe(false);
      const rest = await backend.readLog({ after: xs.after, limit: 5, prefix: ['x'] });
      expect(rest.entries.map((e) => e.event.position)).toEqual([x2]);
      expect(rest.end).toBe(true);
    } finally {
      await abortUnfinished();
      await sql.end();
      await backend.close();
    }
  });
});
