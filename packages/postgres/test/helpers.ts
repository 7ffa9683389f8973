import { randomUUID } from 'node:crypto';
import postgres, { type Sql } from 'postgres';
import { inject } from 'vitest';

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
  'timebox_feed',
  'timebox_feed_horizon',
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
      'timebox_feed',
      'timebox_feed_horizon',
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
