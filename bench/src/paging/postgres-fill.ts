import { encodeAggregateId } from '@timebox/core';
import type { Sql } from 'postgres';
import { runPool } from '../harness.js';
import { pagingId, type PagingStore } from './workloads.js';

/** Aggregates per SQL statement (one transaction each), and statements at once. */
const BATCH = 20_000;
const PARALLEL = 1;

/**
 * Fills aggregates `from` … `to`−1 of `prefix` with the rows the backend's append statement
 * writes for `store.appendEvents(["page", n], 0, [{ type: "Opened", data: { n } }])` under the
 * paging indexer (status `open` at the event's time, label `tier` = `gold`): the head row, the
 * event (its position taken from the sequence, after the head row, as the statement does) and the
 * label row, for a batch of aggregates per statement instead of one per round trip. `rowsOf` below
 * checks the result against an aggregate the store wrote itself.
 */
async function appendInSql(sql: Sql, prefix: string, from: number, to: number): Promise<void> {
  const now = Date.now();
  await sql`
    WITH head AS (
      INSERT INTO timebox_index (prefix, aggregate, next_sequence, status, status_time)
      SELECT ${prefix}, 'page:' || lpad(g.n::text, 8, '0'), 1, 'open', ${now}::bigint
        FROM generate_series(${from}::bigint, ${to - 1}::bigint) AS g(n) ORDER BY g.n
      RETURNING prefix, aggregate),
    stored AS (
      INSERT INTO timebox_events (prefix, aggregate, sequence, type, time_ms, data)
      SELECT h.prefix, h.aggregate, 0, 'Opened', ${now}::bigint, format('{"n":%s}', substr(h.aggregate, 6)::bigint)
        FROM head h ORDER BY h.aggregate
      RETURNING position),
    labelled AS (
      INSERT INTO timebox_labels (prefix, aggregate, label, value)
      SELECT h.prefix, h.aggregate, 'tier', 'gold' FROM head h)
    SELECT count(*) FROM stored`;
}

/** The rows one aggregate has in the backend's tables, without what differs by time, position or transaction. */
async function rowsOf(sql: Sql, prefix: string, key: string): Promise<string> {
  const [rows] = await sql<{ rows: string }[]>`
    SELECT json_build_object(
      'index', (SELECT json_agg(json_build_array(next_sequence, status, status_time IS NOT NULL, life_start, live)) FROM timebox_index WHERE prefix = ${prefix} AND aggregate = ${key}),
      'labels', (SELECT json_agg(json_build_array(label, value) ORDER BY label) FROM timebox_labels WHERE prefix = ${prefix} AND aggregate = ${key}),
      'events', (SELECT json_agg(json_build_array(sequence, type, data) ORDER BY sequence) FROM timebox_events WHERE prefix = ${prefix} AND aggregate = ${key})
    )::text AS rows`;
  return (rows as { rows: string }).rows;
}

/**
 * Fills `size` aggregates: the others in bulk (`appendInSql`), then the last one through the
 * store (`store.appendEvents`, the real client path); then checks that the newest bulk-written
 * aggregate's rows are those the store wrote for its own, number aside, and fails the run if not (a changed append
 * function or argument encoding must not go unnoticed).
 */
export async function bulkFillPostgres(
  sql: Sql,
  prefix: string,
  opened: PagingStore,
  size: number,
  progress: (line: string) => void,
): Promise<void> {
  const last = size - 1;
  const batches = Math.ceil(last / BATCH);
  let done = 0;
  await runPool(batches, PARALLEL, async (b) => {
    const to = Math.min(last, (b + 1) * BATCH);
    await appendInSql(sql, prefix, b * BATCH, to);
    const before = done;
    done += to - b * BATCH;
    if (Math.floor(done / 100_000) > Math.floor(before / 100_000)) progress(`filled ${done.toLocaleString('en-US')} in bulk`);
  });
  await opened.store.appendEvents(pagingId(last), 0, [{ type: 'Opened', data: { n: last } }]);
  const key = (n: number) => encodeAggregateId(pagingId(n));
  const viaStore = (await rowsOf(sql, prefix, key(last))).replace(`{\\"n\\":${last}}`, '{\\"n\\":N}');
  const inBulk = (await rowsOf(sql, prefix, key(last - 1))).replace(`{\\"n\\":${last - 1}}`, '{\\"n\\":N}');
  if (viaStore !== inBulk) throw new Error(`bulk-filled rows differ from the store's: store ${viaStore}, bulk ${inBulk}`);
  // Fresh planner statistics, as autovacuum would gather shortly after such a load: without them
  // the first queries plan for the empty tables the store started from.
  await sql`ANALYZE timebox_index, timebox_labels, timebox_events`;
}
