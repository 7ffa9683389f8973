import { VersionConflictError, type Event, type Store } from '@timebox/core';
import { afterEach, describe, expect, it } from 'vitest';
import type { RaftMember } from '../../src/raft-member.js';
import { LocalCluster } from '../member/support.js';
import { expectIdenticalStates, storeOn } from './support.js';

/** Every event in a member's local log as `id#sequence@position`, read with its own page steps. */
function localLog(member: RaftMember): string[] {
  const out: string[] = [];
  let after = 0;
  for (;;) {
    const page = member.state.readLog(after, 500, 10_000, 1 << 30);
    for (const { id, event } of page.entries) out.push(`${JSON.stringify(id)}#${event.sequence}@${event.position}`);
    after = page.after;
    if (page.end) return out;
  }
}

function keyOf(event: Event): string {
  return `${JSON.stringify(event.aggregateId)}#${event.sequence}@${event.position}`;
}

/** Reads the whole log through `store` in pages of `limit`, checking that no page exceeds it. */
async function readThrough(store: Store, limit: number): Promise<{ keys: string[]; checkpoint: string; pages: number }> {
  const keys: string[] = [];
  let pages = 0;
  let page = await store.readAll({ limit });
  for (;;) {
    pages++;
    expect(page.events.length).toBeLessThanOrEqual(limit);
    keys.push(...page.events.map(keyOf));
    if (page.end) return { keys, checkpoint: page.checkpoint, pages };
    page = await store.readAll({ after: page.checkpoint, limit });
  }
}

describe('the log on a three-member cluster', () => {
  let cluster: LocalCluster | undefined;
  const stores: Store[] = [];

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
    await cluster?.close();
    cluster = undefined;
  });

  function open(i: number, reads: 'linearizable' | 'local' = 'linearizable'): Store {
    const store = storeOn(cluster!, i, reads);
    stores.push(store);
    return store;
  }

  it('every member gives every event the same position, and a follower pages through the log', { timeout: 90_000 }, async () => {
    cluster = await LocalCluster.start(3);
    const leader = await cluster.leader();
    const followers = [0, 1, 2].filter((i) => i !== leader);
    const writers = [0, 1, 2].map((i) => open(i));
    await Promise.all(writers.map((store) => store.ready()));
    const published = cluster.members.map((member) => {
      const seen: string[] = [];
      member!.state.onAppended((events) => seen.push(...events.map((e) => `${JSON.stringify(e.aggregateId)}#${e.sequence}@${e.position}`)));
      return seen;
    });

    // Writers on every member at once, so members forward and the leader packs proposals into envelopes.
    const told: string[] = [];
    await Promise.all(
      writers.map(async (store, w) => {
        for (let round = 0; round < 20; round++) {
          for (let a = 0; a < 3; a++) {
            const id = ['acct', String(w), String(a)];
            const events = await store.appendEvents(id, round * 2, [
              { type: 'Deposited', data: { round } },
              { type: 'Noted', data: { a } },
            ]);
            told.push(...events.map(keyOf));
          }
        }
      }),
    );
    await cluster.converged();
    const logs = cluster.members.map((member) => localLog(member!));
    expect(logs[0]).toHaveLength(3 * 20 * 3 * 2);
    expect(logs[1]).toEqual(logs[0]);
    expect(logs[2]).toEqual(logs[0]);
    // The positions each writer was told are the ones every member stores, and the log runs in position order.
    expect([...told].sort()).toEqual([...logs[0]!].sort());
    const positions = logs[0]!.map((key) => Number(key.split('@')[1]));
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    expect(new Set(positions).size).toBe(positions.length);
    // Every member's feed carried the same positions, in log order.
    for (const seen of published) expect(seen).toEqual(logs[0]);

    // A store on a follower reads the same log in pages; another follower resumes from its checkpoint.
    const reader = open(followers[0]!);
    const other = open(followers[1]!, 'local');
    const { keys, pages } = await readThrough(reader, 7);
    expect(keys).toEqual(logs[0]);
    expect(pages).toBeGreaterThanOrEqual(Math.ceil(keys.length / 7));
    const half = await reader.readAll({ limit: 60 });
    const rest = await other.readAll({ after: half.checkpoint, limit: 10_000 });
    expect(rest.end).toBe(true);
    expect([...half.events, ...rest.events].map(keyOf)).toEqual(logs[0]);
    // One log identity on every member: a checkpoint from one is valid on the others.
    expect(new Set([...writers, reader, other].map((store) => store.backend.log?.id)).size).toBe(1);
    expect(reader.backend.log?.id).toMatch(/^raft:[0-9a-f-]{36}$/);
    expect(reader.backend.log?.partitions).toBe(1);
    expect(await other.headCheckpoint()).toBe(await reader.headCheckpoint());
    await expectIdenticalStates(cluster);
  });

  it('positions survive a restart and a snapshot install, and later appends go on from the same head', { timeout: 120_000 }, async () => {
    cluster = await LocalCluster.start(3, { snapshotEvery: 20, compactionMargin: 5 });
    const leader = await cluster.leader();
    const down = [0, 1, 2].find((i) => i !== leader)!;
    const writer = createTrimmingStore(leader);
    await writer.ready();
    await writer.appendEvents(['early'], 0, [{ type: 'Wrote', data: { n: -1 } }]);
    await cluster.converged();
    const stoppedAt = cluster.member(down).status().lastIndex;
    await cluster.stop(down);

    // Enough commands for several snapshots and compactions past the stopped member, with events
    // leaving the log by trimming and archiving meanwhile.
    for (let n = 0; n < 120; n++) await writer.appendEvents(['acct', String(n % 4)], Math.floor(n / 4), [{ type: 'Wrote', data: { n } }]);
    await writer.putSnapshot(['acct', '0'], { upTo: 10 }, 10);
    await writer.archive(['acct', '1']);
    for (let n = 0; n < 30; n++) await writer.appendEvents(['more'], n, [{ type: 'Wrote', data: { n } }]);
    expect(cluster.member(leader).status().snapshotIndex - 5).toBeGreaterThan(stoppedAt + 1);

    const member = await cluster.restart(down);
    let restores = 0;
    member.state.onRestored(() => restores++);
    await member.ready();
    await cluster.converged();
    expect(restores).toBeGreaterThanOrEqual(1);
    const expected = localLog(cluster.member(leader));
    expect(expected.some((key) => key.startsWith('["acct","0"]#9@'))).toBe(false);
    expect(expected.some((key) => key.startsWith('["acct","1"]'))).toBe(false);
    expect(localLog(member)).toEqual(expected);
    expect(member.state.logHead()).toBe(cluster.member(leader).state.logHead());
    await expectIdenticalStates(cluster);

    // Restart the leader too (its state from disk): same log; the next append takes the next position everywhere.
    const head = cluster.member(leader).state.logHead();
    await Promise.all(stores.splice(0).map((store) => store.close()));
    await cluster.stop(leader);
    await cluster.restart(leader);
    await cluster.leader();
    expect(localLog(cluster.member(leader))).toEqual(expected);
    const through = open(down);
    const [late] = await through.appendEvents(['late'], 0, [{ type: 'Wrote', data: { n: 'late' } }]);
    expect(late!.position).toBe(head + 1);
    await cluster.converged();
    for (const running of cluster.members) expect(localLog(running!)).toEqual([...expected, `["late"]#0@${head + 1}`]);
    await expectIdenticalStates(cluster);
  });

  it('one life per ID holds across members: the archive on one, the stale append on another', { timeout: 90_000 }, async () => {
    cluster = await LocalCluster.start(3);
    const [a, b, c] = [open(0), open(1), open(2, 'local')];
    await Promise.all([a, b, c].map((store) => store.ready()));
    const id = ['acct', 'reborn'];
    await a.appendEvents(id, 0, [
      { type: 'Opened', data: {} },
      { type: 'Deposited', data: { cents: 5 } },
    ]);
    await b.archive(id);
    // The local store on the third member sees the archive once its member applied it.
    await cluster.converged();
    expect(await c.getSnapshot(id)).toMatchObject({ value: undefined, nextSequence: 3, events: [] });
    expect(await c.listAggregates(['acct'])).toEqual([]);
    const stale = await a.appendEvents(id, 2, [{ type: 'Deposited', data: { cents: 1 } }]).catch((error: unknown) => error);
    expect(stale).toBeInstanceOf(VersionConflictError);
    expect(stale).toMatchObject({ actualSequence: 3, newEvents: [] });
    const reborn = await c.appendEvents(id, 3, [{ type: 'Opened', data: { again: true } }]);
    expect(reborn.map((event) => event.sequence)).toEqual([3]);
    // A snapshot decided on the old life is ignored on every member.
    await b.putSnapshot(id, { old: true }, 2);
    await cluster.converged();
    for (const store of [a, b, c]) {
      expect(await store.listAggregates(['acct'])).toEqual([id]);
      const snapshot = await store.getSnapshot(id);
      expect(snapshot.value).toBeUndefined();
      expect(snapshot.events.map((event) => [event.sequence, event.position])).toEqual([[3, reborn[0]!.position]]);
    }
    await expectIdenticalStates(cluster);
  });

  function createTrimmingStore(i: number): Store {
    const store = storeOn(cluster!, i, 'linearizable', { trimEvents: true });
    stores.push(store);
    return store;
  }
});
