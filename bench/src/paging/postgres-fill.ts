import { encodeAggregateId } from '@timebox/core';
import type { Sql } from 'postgres';
import { runPool } from '../harness.js';
import { pagingId, type PagingStore } from './workloads.js';

/** Aggregates per SQL statement (one transaction each) of the bulk fill, and statements at once (one: concurrent batches, each pruning the feed in its transaction, stalled each other). */
const BATCH = 20_000;
const PARALLEL = 1;
/** `@timebox/postgres`'s default `feedRetention`, which the bench's stores use. */
const FEED_RETENTION = 10_000;

/**
 * Fills aggregates `from` … `to`−1 of `prefix` by calling the backend's own append function,
 * `timebox_append`, once per aggregate with the arguments `PostgresBackend.append` passes for
 * `store.appendEvents(["page", n], 0, [{ type: "Opened", data: { n } }])` under the paging
 * indexer: the batch `[["Opened", time, "{\"n\":n}"]]`, status `open` at the event's time, the
 * label pair `[["tier", "gold"]]`, the default feed retention. The same function writes the same
 * rows (head, event, label, feed), a batch of them per statement instead of one per round trip.
 */
async function appendInSql(sql: Sql, prefix: string, from: number, to: number): Promise<void> {
  const now = Date.now();
  await sql`
    SELECT count(*) FROM generate_series(${from}::bigint, ${to - 1}::bigint) AS g(n),
      LATERAL timebox_append(${prefix}, 'page:' || lpad(g.n::text, 8, '0'), 0,
        json_build_array(json_build_array('Opened', ${now}::bigint, format('{"n":%s}', g.n)))::text::json,
        'open', ${now}::bigint, '[["tier","gold"]]'::json, ${FEED_RETENTION}) AS a`;
}

/** The rows one aggregate has in the backend's tables, without what differs by time, position or transaction. */
async function rowsOf(sql: Sql, prefix: string, key: string): Promise<string> {
  const [rows] = await sql<{ rows: string }[]>`
    SELECT json_build_object(
      'index', (SELECT json_agg(json_build_array(next_sequence, status, status_time IS NOT NULL, life_start, live)) FROM timebox_index WHERE prefix = ${prefix} AND aggregate = ${key}),
      'labels', (SELECT json_agg(json_build_array(label, value) ORDER BY label) FROM timebox_labels WHERE prefix = ${prefix} AND aggregate = ${key}),
      'events', (SELECT json_agg(json_build_array(sequence, type, data) ORDER BY sequence) FROM timebox_events WHERE prefix = ${prefix} AND aggregate = ${key}),
      'feed', (SELECT json_agg(json_build_array(first_sequence, count)) FROM timebox_feed WHERE prefix = ${prefix} AND aggregate = ${key})
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
  // Last, so that its feed row and the bulk's newest are both within the feed's retention.
  await opened.store.appendEvents(pagingId(last), 0, [{ type: 'Opened', data: { n: last } }]);
  const key = (n: number) => encodeAggregateId(pagingId(n));
  const viaStore = (await rowsOf(sql, prefix, key(last))).replace(`{\\"n\\":${last}}`, '{\\"n\\":N}');
  const inBulk = (await rowsOf(sql, prefix, key(last - 1))).replace(`{\\"n\\":${last - 1}}`, '{\\"n\\":N}');
  if (viaStore !== inBulk) throw new Error(`bulk-filled rows differ from the store's: store ${viaStore}, bulk ${inBulk}`);
  // Fresh planner statistics, as autovacuum would gather shortly after such a load: without them
  // the first queries plan for the empty tables the store started from.
  await sql`ANALYZE timebox_index, timebox_labels, timebox_events`;
}
