import { randomUUID } from 'node:crypto';
import postgres, { type Sql, type TransactionSql } from 'postgres';
import { inject } from 'vitest';
import { appendStatement } from '../src/append-statement.js';

/** The URL of the server the global setup found or started. */
export function serverUrl(): string {
  return inject('postgresUrl');
}

/** A fresh store prefix: tests share the tables, never a prefix. */
export function randomPrefix(label = 'test'): string {
  return `${label}-${randomUUID()}`;
}

/** A small connection of the test's own, for checks and cleanup. */
export function adminSql(): Sql {
  return postgres(serverUrl(), { max: 2, onnotice: () => undefined });
}

/** Every table the timebox schema creates, sorted. */
export const TIMEBOX_TABLES: readonly string[] = [
  'timebox_archive',
  'timebox_events',
  'timebox_feed_listener',
  'timebox_index',
  'timebox_labels',
  'timebox_projection',
  'timebox_schema',
  'timebox_snapshot',
];

/** Deletes every row a prefix owns, in every timebox table. */
export async function deletePrefix(sql: Sql, prefix: string): Promise<void> {
  await sql.begin(async (tx) => {
    for (const table of [
      'timebox_events',
      'timebox_snapshot',
      'timebox_labels',
      'timebox_index',
      'timebox_archive',
      'timebox_feed_listener',
      'timebox_projection',
    ]) {
      await tx`DELETE FROM ${tx(table)} WHERE prefix = ${prefix}`;
    }
  });
}

/** Polls `check` until it returns true or `ms` pass; returns whether it did. */
export async function eventually(check: () => Promise<boolean> | boolean, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Appends `events` ([type, time, data] each) as the first events of `aggregate` (a stored key),
 * with the backend's own append statement, on `sql`: a transaction's, to hold the append open.
 * Returns the positions the events took.
 */
export async function appendFirst(
  sql: Sql | TransactionSql,
  prefix: string,
  aggregate: string,
  events: [string, number, string][],
): Promise<number[]> {
  const { positions } = await appendStatement(sql, { prefix, aggregate, expected: 0, events, status: null, statusTime: null, labels: [] });
  if (positions === null) throw new Error(`${aggregate} already has events in ${prefix}`);
  return positions;
}
