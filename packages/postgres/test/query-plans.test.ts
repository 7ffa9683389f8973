import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresBackend } from '../src/index.js';
import { randomUUID } from 'node:crypto';
import { adminSql, deletePrefix, randomPrefix, serverUrl } from './helpers.js';

// A database of this file's own: plans depend on table statistics, which other test files
// running at the same time (in the shared database) would keep changing under the assertions.
const server = adminSql();
const database = `timebox_plans_${randomUUID().replaceAll('-', '')}`;
await server.unsafe(`CREATE DATABASE ${database}`);
const databaseUrl = (() => {
  const url = new URL(serverUrl());
  url.pathname = `/${database}`;
  return url.toString();
})();
const admin = postgres(databaseUrl, { max: 2, onnotice: () => undefined });
afterAll(async () => {
  await admin.end();
  await server.unsafe(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await server.end();
});

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

describe('query plans', () => {
  it('serves listing, status, label and load queries from indexes, not table scans', async () => {
    const prefix = randomPrefix('plans');
    const captured: { query: string; parameters: unknown[] }[] = [];
    const backend = new PostgresBackend({
      url: databaseUrl,
      prefix,
      maxConns: 1,
      // postgres.js reports every statement it sends; the test explains exactly those.
      postgres: { debug: (_connection, query, parameters) => captured.push({ query, parameters }) },
    });
    try {
      await backend.ready();
      // Enough rows in this prefix, among other prefixes' rows, for the planner to prefer indexes.
      await admin`
        INSERT INTO timebox_index (prefix, aggregate, next_sequence, status, status_time)
        SELECT ${prefix}, 'order:' || g, 3, 'status-' || (g % 50), g FROM generate_series(1, 20000) g`;
      await admin`
        INSERT INTO timebox_labels (prefix, aggregate, label, value)
        SELECT ${prefix}, 'order:' || g, 'region', 'region-' || (g % 40) FROM generate_series(1, 20000) g`;
      await admin`
        INSERT INTO timebox_events (prefix, aggregate, sequence, type, time_ms, data)
        SELECT ${prefix}, 'order:' || (g / 3), g % 3, 'T', g, '{}' FROM generate_series(3, 60002) g`;
      await admin`
        INSERT INTO timebox_snapshot (prefix, aggregate, sequence, data)
        SELECT ${prefix}, 'order:' || g, 1, '{}' FROM generate_series(1, 20000) g`;
      // As autovacuum would in steady state: statistics, and a visibility map for index-only scans.
      await admin`VACUUM (ANALYZE) timebox_index, timebox_labels, timebox_events, timebox_snapshot`;

      const calls: [string, () => Promise<unknown>, string[]][] = [
        ['listAggregates(prefix)', () => backend.listAggregates(['order', '12'], { limit: 100 }), ['timebox_index_pkey']],
        ['listAggregatesByStatus', () => backend.listAggregatesByStatus('status-7', { limit: 100 }), ['timebox_index_by_status']],
        ['listAggregatesByLabel', () => backend.listAggregatesByLabel('region', 'region-3', { limit: 100 }), ['timebox_labels_by_value']],
        ['listLabelValues', () => backend.listLabelValues('region', { limit: 100 }), ['timebox_labels_by_value']],
        ['getAggregateStatus', () => backend.getAggregateStatus(['order', '9']), ['timebox_index_pkey']],
        ['loadEvents', () => backend.loadEvents(['order', '5'], 0), ['timebox_events_pkey']],
        ['loadSnapshot', () => backend.loadSnapshot(['order', '7']), ['timebox_events_pkey', 'timebox_snapshot_pkey']],
      ];
      for (const [name, call, indexes] of calls) {
        captured.length = 0;
        await call();
        expect(captured, name).toHaveLength(1);
        const { query, parameters } = captured[0]!;
        const [row] = await admin.unsafe(`EXPLAIN (FORMAT JSON) ${query}`, parameters as never[]);
        const plan = (row!['QUERY PLAN'] as { Plan: PlanNode }[])[0]!.Plan;
        const all = nodes(plan);
        expect(
          all.filter((node) => node['Node Type'] === 'Seq Scan').map((node) => node['Relation Name']),
          name,
        ).toEqual([]);
        const used = new Set(all.map((node) => node['Index Name']).filter((index) => index !== undefined));
        for (const index of indexes) expect([...used], name).toContain(index);
        // Ordered answers come straight from the index order, without sorting.
        if (name === 'listAggregatesByStatus' || name === 'listLabelValues' || name === 'loadEvents') {
          expect(
            all.map((node) => node['Node Type']),
            name,
          ).not.toContain('Sort');
        }
      }
    } finally {
      await backend.close();
      await deletePrefix(admin, prefix);
    }
  });

  it('reads the log and its head through the position index (plans of the statements inside the functions)', async (context) => {
    const prefix = randomPrefix('plans-log');
    const neighbour = randomPrefix('plans-log-other');
    const captured: { query: string; parameters: unknown[] }[] = [];
    const backend = new PostgresBackend({
      url: databaseUrl,
      prefix,
      maxConns: 1,
      postgres: { debug: (_connection, query, parameters) => captured.push({ query, parameters }) },
    });
    // The statements run inside plpgsql functions, so EXPLAIN of the call shows nothing of them;
    // auto_explain (nested statements, plans sent as notices) shows each one as it runs.
    const plans: PlanNode[] = [];
    const session = postgres(databaseUrl, {
      max: 1,
      onnotice: (notice) => {
        const text = String(notice.message);
        const start = text.indexOf('{');
        if (text.includes('plan:') && start >= 0) plans.push((JSON.parse(text.slice(start)) as { Plan: PlanNode }).Plan);
      },
    });
    try {
      try {
        await session`LOAD 'auto_explain'`;
      } catch {
        context.skip('auto_explain is not installed on this server');
      }
      await backend.ready();
      // Two prefixes interleaved in the one position sequence, as stores sharing the tables are.
      await admin`
        INSERT INTO timebox_events (prefix, aggregate, sequence, type, time_ms, data)
        SELECT CASE WHEN g % 4 = 0 THEN ${neighbour} ELSE ${prefix} END, 'order:' || (g / 3), g % 3,
               CASE WHEN g % 7 = 0 THEN 'Rare' ELSE 'T' END, g, '{}'
          FROM generate_series(3, 80002) g`;
      await admin`VACUUM (ANALYZE) timebox_events`;
      const [middle] = await admin<{ position: number }[]>`
        SELECT position::float8 AS position FROM timebox_events WHERE prefix = ${prefix} ORDER BY position OFFSET 30000 LIMIT 1`;
      await session`SET auto_explain.log_min_duration = 0`;
      await session`SET auto_explain.log_nested_statements = on`;
      await session`SET auto_explain.log_format = json`;
      await session`SET auto_explain.log_level = notice`;

      const after = [middle!.position];
      const calls: [string, () => Promise<unknown>][] = [
        ['readLog', () => backend.readLog({ after, limit: 100 })],
        ['readLog by type', () => backend.readLog({ after, limit: 100, types: ['Rare'] })],
        ['readLog by prefix', () => backend.readLog({ after, limit: 100, prefix: ['order', '20000'] })],
        ['logHead', () => backend.logHead()],
      ];
      for (const [name, call] of calls) {
        captured.length = 0;
        await call();
        expect(captured, name).toHaveLength(1);
        const { query, parameters } = captured[0]!;
        plans.length = 0;
        await session.unsafe(query, parameters as never[]);
        const all = plans.flatMap(nodes);
        const onEvents = all.filter((node) => node['Relation Name'] === 'timebox_events');
        expect(onEvents.length, name).toBeGreaterThan(0);
        expect(
          onEvents.filter((node) => node['Node Type'] === 'Seq Scan'),
          name,
        ).toEqual([]);
        // The position index serves the range (directly, or under a bitmap scan of a bounded range;
        // with an aggregate filter the planner may combine it with the primary key).
        const indexes = new Set(all.map((node) => node['Index Name']).filter((index) => index !== undefined));
        expect([...indexes], name).toContain('timebox_events_by_position');
        for (const index of indexes) expect(['timebox_events_by_position', 'timebox_events_pkey'], name).toContain(index);
        // Unfiltered, position order comes straight from the index: no Sort at all.
        if (name === 'readLog' || name === 'logHead') {
          expect(
            all.map((node) => node['Node Type']),
            name,
          ).not.toContain('Sort');
        }
      }
      // The event feed's read (feed-reader.ts): the same page, and the trimmed aggregates from the
      // head rows' partial index, never a scan of the prefix's head rows.
      await admin`INSERT INTO timebox_index (prefix, aggregate, next_sequence, trimmed_position) VALUES (${prefix}, 'gone', 1, ${after[0]! + 50})`;
      plans.length = 0;
      await session`SELECT * FROM timebox_read_log(${prefix}, ${after[0]!}, 1000, 1000, NULL, NULL, NULL, NULL, 200, true)`;
      const feedNodes = plans.flatMap(nodes);
      const ours = feedNodes.filter((node) => ['timebox_events', 'timebox_index'].includes(node['Relation Name'] as string));
      expect(ours.length).toBeGreaterThan(0);
      expect(ours.filter((node) => node['Node Type'] === 'Seq Scan')).toEqual([]);
      expect(feedNodes.map((node) => node['Index Name'])).toContain('timebox_index_by_trim');
    } finally {
      await session.end();
      await backend.close();
      await deletePrefix(admin, prefix);
      await deletePrefix(admin, neighbour);
    }
  });
});
