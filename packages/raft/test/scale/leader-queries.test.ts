import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../member/support.js';
import { waitFor } from '../crash/member-handle.js';
import type { QueryMemberSpec, QueryReport } from './protocol.js';
import { QueryMemberHandle } from './query-handle.js';

/** Aggregates in the store: enough that a full iteration is many pages (the iterators read 1,000 at a time). */
const AGGREGATES = 30_000;
/** Full iterations of each query (prefix, status, label). */
const ROUNDS = 3;
/** Writer loops appending elsewhere while the queries run. */
const WRITERS = 8;

/**
 * SPEC section 16, "No stalls": three members as separate OS processes on loopback, default
 * timings (50 ms ticks, elections after 500–1,000 ms without a heartbeat). The leader fills a
 * store, then pages through all of it several times by prefix, by status and by label while
 * writers append; the leader keeps its leadership throughout (every status report of every
 * member, from before the queries to after them, names the same leader in the same term) and
 * every iteration yields each aggregate exactly once. The leader's longest event-loop stall is
 * printed, not asserted: timing belongs to the bench (`pnpm bench -- --large --backend raft`).
 */
describe('a raft leader answering paged queries over a large store (separate OS processes)', () => {
  let handles: QueryMemberHandle[] = [];
  let dir: string | undefined;

  afterEach(async () => {
    await Promise.all(handles.map((handle) => handle.close(30_000).catch(() => handle.kill())));
    handles = [];
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('keeps its leadership and answers every page completely while writes go on', { timeout: 120_000 }, async () => {
    dir = mkdtempSync(join(tmpdir(), 'timebox-raft-scale-'));
    const servers: { id: string; address: string }[] = [];
    for (let i = 1; i <= 3; i++) servers.push({ id: `n${i}`, address: `127.0.0.1:${await freePort()}` });
    handles = servers.map((server) => {
      const spec: QueryMemberSpec = {
        member: { localId: server.id, address: server.address, dataDir: join(dir as string, server.id), servers },
        statusEveryMs: 50,
      };
      return new QueryMemberHandle(spec, join(dir as string, `${server.id}.log`));
    });
    await Promise.all(handles.map((handle) => handle.report('ready', 60_000)));
    let leader: QueryMemberHandle | undefined;
    await waitFor(
      () => {
        const leaders = handles.filter((handle) => handle.status?.role === 'leader');
        leader = leaders.length === 1 ? leaders[0] : undefined;
        return leader !== undefined && handles.every((handle) => handle.status?.leader === leader?.id);
      },
      30_000,
      () => `one leader that every member names: ${JSON.stringify(handles.map((handle) => handle.status))}`,
    );
    const chosen = leader as QueryMemberHandle;

    chosen.send({ do: 'fill', count: AGGREGATES, inFlight: 256 });
    const filled = await chosen.report<{ ms: number }>('filled', 90_000);

    // From here on, every report of every member must name this leader in this term.
    const term = chosen.status?.term as number;
    const from = handles.map((handle) => handle.statuses.length);
    chosen.send({ do: 'query', count: AGGREGATES, rounds: ROUNDS, writers: WRITERS });
    const report = await chosen.report<QueryReport>('queried', 90_000);
    // Reports taken after the queries ended, so the window is closed on both sides.
    const until = handles.map((handle) => handle.statuses.length + 2);
    await waitFor(
      () => handles.every((handle, i) => handle.statuses.length >= (until[i] as number)),
      10_000,
      () => 'two more status reports from every member',
    );

    console.log(
      `filled ${AGGREGATES} aggregates in ${filled.ms} ms; ${report.runs.length} full iterations ` +
        `(${report.runs.map((run) => `${run.query} ${run.ms} ms`).join(', ')}); ${report.writes} writes meanwhile; ` +
        `leader's event loop: max delay ${report.maxLoopDelayMs.toFixed(1)} ms, p99 ${report.p99LoopDelayMs.toFixed(1)} ms`,
    );

    for (const run of report.runs) {
      expect(run, `${run.query} iteration`).toMatchObject({ items: AGGREGATES, duplicates: 0, foreign: 0, missing: 0 });
    }
    expect(report.runs).toHaveLength(ROUNDS * 3);
    expect(report.writeErrors).toBe(0);
    expect(report.writes).toBeGreaterThan(0);
    expect(report.before).toEqual({ role: 'leader', term });
    expect(report.after).toEqual({ role: 'leader', term });
    handles.forEach((handle, i) => {
      const window = handle.statuses.slice(from[i], until[i]);
      const other = window.filter((status) => status.term !== term || status.leader !== chosen.id);
      expect(other, `${handle.id}'s status reports naming another leader or term (leader ${chosen.id}, term ${term})`).toEqual([]);
    });
  });
});
