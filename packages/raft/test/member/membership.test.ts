import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStore, type Store } from '@timebox/core';
import { afterEach, describe, expect, it } from 'vitest';
import { NotLeaderError } from '../../src/consensus/errors.js';
import { freeLoopbackPort } from '../../src/local-cluster.js';
import type { RaftMemberOptions, RaftServerAddress } from '../../src/options.js';
import { RaftMember } from '../../src/raft-member.js';
import { contentsOf } from '../cluster/support.js';
import { FAST, sleep, waitFor } from './support.js';

/** Members of one cluster on loopback ports, started, stopped and replaced by ID. */
class Members {
  readonly running = new Map<string, RaftMember>();
  readonly options = new Map<string, RaftMemberOptions>();

  private constructor(
    readonly dir: string,
    private readonly extra: Partial<RaftMemberOptions>,
  ) {}

  static async start(ids: readonly string[], extra: Partial<RaftMemberOptions> = {}): Promise<Members> {
    const members = new Members(await mkdtemp(join(tmpdir(), 'timebox-membership-')), { ...FAST, ...extra });
    const servers: RaftServerAddress[] = [];
    for (const id of ids) servers.push({ id, address: `127.0.0.1:${await freeLoopbackPort()}` });
    for (const server of servers) {
      const options = { ...members.extra, localId: server.id, address: server.address, dataDir: join(members.dir, server.id), servers };
      members.options.set(server.id, options);
      members.running.set(server.id, await RaftMember.open(options));
    }
    return members;
  }

  /** Starts a brand-new member `id` that joins (it knows the running members' addresses). */
  async join(id: string): Promise<RaftMember> {
    const address = `127.0.0.1:${await freeLoopbackPort()}`;
    const servers: RaftServerAddress[] = [
      ...[...this.running.keys()].map((other) => ({ id: other, address: this.options.get(other)!.address })),
      { id, address },
    ];
    const options = { ...this.extra, localId: id, address, dataDir: join(this.dir, id), servers };
    this.options.set(id, options);
    const member = await RaftMember.join(options);
    this.running.set(id, member);
    return member;
  }

  get(id: string): RaftMember {
    const member = this.running.get(id);
    if (member === undefined) throw new Error(`${id} is not running`);
    return member;
  }

  /** The running leader (of the highest term), waiting for one. */
  async leader(): Promise<RaftMember> {
    let found: RaftMember | undefined;
    await waitFor('a leader', () => {
      found = undefined;
      for (const member of this.running.values()) {
        const status = member.status();
        if (status.role === 'leader' && (found === undefined || status.term > found.status().term)) found = member;
      }
      return found !== undefined;
    });
    return found!;
  }

  async stop(id: string, transferLeadership = true): Promise<void> {
    const member = this.get(id);
    this.running.delete(id);
    await member.close({ transferLeadership });
  }

  /** Every running member has applied what the leader committed when called. */
  async caughtUp(ids: readonly string[] = [...this.running.keys()]): Promise<void> {
    const target = (await this.leader()).status().commit;
    await waitFor(`${ids.join(', ')} to apply index ${target}`, () => ids.every((id) => this.get(id).status().applied >= target), 60_000);
  }

  async close(): Promise<void> {
    for (const member of this.running.values()) await member.close({ transferLeadership: false }).catch(() => undefined);
    this.running.clear();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Writers of the running test, stopped after it whether it passed or not. */
const writers: Writer[] = [];

/**
 * Writes one event per new aggregate, one after another, through whichever member is asked, until
 * stopped; remembers which writes were acknowledged (a failed write's outcome is unknown).
 */
class Writer {
  readonly acknowledged: number[] = [];
  failures = 0;
  private stopped = false;
  private running: Promise<void> | null = null;

  constructor(private readonly store: () => Store) {
    writers.push(this);
  }

  start(): void {
    this.running = (async () => {
      for (let n = 0; !this.stopped; n++) {
        try {
          await this.store().appendEvents(['w', String(n)], 0, [{ type: 'Wrote', data: { n } }]);
          this.acknowledged.push(n);
        } catch {
          // Back off on a timer: a write that fails without I/O (a closed store, no leader known)
          // would otherwise spin on microtasks and starve the timers this test waits on.
          this.failures++;
          await sleep(10);
        }
      }
    })();
  }

  /** Waits until `count` more writes were acknowledged. */
  async more(count: number): Promise<void> {
    const target = this.acknowledged.length + count;
    await waitFor(`${count} more acknowledged writes`, () => this.acknowledged.length >= target, 60_000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }
}

/** Every acknowledged write is in `member`'s state. */
function expectHoldsAll(member: RaftMember, acknowledged: readonly number[]): void {
  const held = new Set(contentsOf(member).map((aggregate) => aggregate.id.join('/')));
  const missing = acknowledged.filter((n) => !held.has(`w/${n}`));
  expect(missing, `${member.id} lost acknowledged writes`).toEqual([]);
}

describe('membership changes between real members over TCP', () => {
  let members: Members | undefined;
  const stores: Store[] = [];

  afterEach(async () => {
    await Promise.all(writers.splice(0).map((writer) => writer.stop()));
    await Promise.all(stores.splice(0).map((store) => store.close().catch(() => undefined)));
    await members?.close();
    members = undefined;
  });

  it('grows 3 → 5 and shrinks 5 → 3 while writing, losing nothing acknowledged', { timeout: 180_000 }, async () => {
    members = await Members.start(['a', 'b', 'c']);
    const cluster = members;
    // Writes go through a, which stays a member throughout (forwarded to whoever leads).
    const store = createStore(cluster.get('a').backend());
    stores.push(store);
    await store.ready();
    const writer = new Writer(() => store);
    writer.start();
    await writer.more(20);

    for (const id of ['d', 'e']) {
      await cluster.join(id);
      const leader = await cluster.leader();
      await leader.addLearner(id, cluster.options.get(id)!.address);
      expect(leader.members().learners).toEqual([id]);
      await writer.more(10);
      await cluster.caughtUp([id]);
      await (await cluster.leader()).promote(id);
      await writer.more(10);
    }
    const grown = (await cluster.leader()).members();
    expect([...grown.voters].sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(grown.learners).toEqual([]);

    // Shrink: remove two voters, the leader itself among them if it is one of them.
    for (const id of ['e', 'b']) {
      const leader = await cluster.leader();
      if (leader.id === id) await leader.transferLeadership();
      await (await cluster.leader()).removeMember(id);
      await cluster.stop(id);
      await writer.more(10);
    }
    const shrunk = (await cluster.leader()).members();
    expect([...shrunk.voters].sort()).toEqual(['a', 'c', 'd']);

    // Three voters: two of them are a quorum, whichever one is down (five voters would need three).
    const notA = ['c', 'd'];
    const downId = notA[0]!;
    await cluster.stop(downId);
    await writer.more(10);
    await writer.stop();
    await cluster.caughtUp();
    for (const member of cluster.running.values()) expectHoldsAll(member, writer.acknowledged);
    expect(writer.acknowledged.length).toBeGreaterThan(60);
  });

  it('replaces a member whose data folder was deleted with a new member that catches up by snapshot', { timeout: 180_000 }, async () => {
    members = await Members.start(['a', 'b', 'c'], { snapshotEvery: 20, compactionMargin: 5 });
    const cluster = members;
    const store = createStore(cluster.get('a').backend());
    stores.push(store);
    await store.ready();
    const writer = new Writer(() => store);
    writer.start();
    await writer.more(10);

    // c's machine dies for good: stopped without a handover, its disk gone.
    const lost = (await cluster.leader()).id === 'c' ? 'b' : 'c';
    await cluster.stop(lost, false);
    await rm(cluster.options.get(lost)!.dataDir, { recursive: true, force: true });
    // Enough writes for snapshots and compactions, so the newcomer cannot catch up from the log.
    await writer.more(120);

    await (await cluster.leader()).removeMember(lost);
    const fresh = await cluster.join('f');
    let restores = 0;
    fresh.state.onRestored(() => restores++);
    await (await cluster.leader()).addLearner('f', cluster.options.get('f')!.address);
    await cluster.caughtUp(['f']);
    await (await cluster.leader()).promote('f');
    await writer.more(10);
    await writer.stop();
    await cluster.caughtUp();

    expect(restores).toBeGreaterThanOrEqual(1);
    expect(fresh.status().snapshotIndex).toBeGreaterThan(0);
    expect([...(await cluster.leader()).members().voters].sort()).toEqual(['a', lost === 'b' ? 'c' : 'b', 'f'].sort());
    for (const member of cluster.running.values()) expectHoldsAll(member, writer.acknowledged);
    // The configuration survives a restart of the newcomer.
    await cluster.stop('f');
    const again = await RaftMember.join(cluster.options.get('f')!);
    cluster.running.set('f', again);
    expect([...again.members().voters].sort()).toEqual([...(await cluster.leader()).members().voters].sort());
  });

  it('takes membership calls in turn: two at once, and one right after a transfer', { timeout: 60_000 }, async () => {
    members = await Members.start(['a', 'b', 'c']);
    const cluster = members;
    await cluster.join('d');
    await cluster.join('e');
    const leader = await cluster.leader();
    // The second call waits for the first to commit instead of failing with ConfChangeInProgressError.
    await Promise.all(['d', 'e'].map((id) => leader.addLearner(id, cluster.options.get(id)!.address)));
    expect([...leader.members().learners].sort()).toEqual(['d', 'e']);
    // A new leader's own first entry must commit before its first change: the call waits for it.
    const target = await leader.transferLeadership();
    const next = cluster.get(target!);
    await next.removeMember('e');
    expect(next.members().learners).toEqual(['d']);
  });

  it('refuses a membership change on a follower, naming the leader', { timeout: 60_000 }, async () => {
    members = await Members.start(['a', 'b', 'c']);
    const leader = await members.leader();
    const follower = [...members.running.values()].find((member) => member !== leader)!;
    await waitFor('the follower to know the leader', () => follower.status().leader === leader.id);
    await expect(follower.addLearner('x', '127.0.0.1:1')).rejects.toThrow(NotLeaderError);
    await expect(follower.addLearner('x', '127.0.0.1:1')).rejects.toThrow(new RegExp(`the leader is "${leader.id}"`));
  });
});

describe('leadership transfer between real members over TCP', () => {
  let members: Members | undefined;
  const stores: Store[] = [];

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close().catch(() => undefined)));
    await members?.close();
    members = undefined;
  });

  // An election timeout of at least 50 ticks × 20 ms = 1 s: a write that waits for an election waits that long.
  const SLOW_ELECTIONS = { tickMs: 20, electionTicks: 50 } as const;
  const MIN_ELECTION_MS = 1000;

  /** How long the first write through `via` takes after the leader closes. */
  async function pauseAfterLeaderCloses(transferLeadership: boolean): Promise<{ pauseMs: number; termsAdvanced: number }> {
    members = await Members.start(['a', 'b', 'c'], SLOW_ELECTIONS);
    const leader = await members.leader();
    const via = [...members.running.values()].find((member) => member !== leader)!;
    const store = createStore(via.backend());
    stores.push(store);
    await store.ready();
    await store.appendEvents(['before'], 0, [{ type: 'Wrote', data: {} }]);
    const term = leader.status().term;
    const started = performance.now();
    await members.stop(leader.id, transferLeadership);
    await store.appendEvents(['after'], 0, [{ type: 'Wrote', data: {} }]);
    const pauseMs = performance.now() - started;
    console.log(`write pause after the leader closed (transfer ${transferLeadership ? 'on' : 'off'}): ${pauseMs.toFixed(0)} ms`);
    return { pauseMs, termsAdvanced: via.status().term - term };
  }

  it("a leader's close() hands leadership over: the next write does not wait an election timeout", { timeout: 60_000 }, async () => {
    const { pauseMs, termsAdvanced } = await pauseAfterLeaderCloses(true);
    expect(pauseMs).toBeLessThan(MIN_ELECTION_MS);
    // One campaign, started by TimeoutNow: no split votes, no pre-vote round lost to the lease.
    expect(termsAdvanced).toBe(1);
  });

  it('with the handover turned off the next write waits at least an election timeout', { timeout: 60_000 }, async () => {
    const { pauseMs } = await pauseAfterLeaderCloses(false);
    expect(pauseMs).toBeGreaterThanOrEqual(MIN_ELECTION_MS);
  });

  it('transferLeadership(to) moves leadership to that voter', { timeout: 60_000 }, async () => {
    members = await Members.start(['a', 'b', 'c']);
    const leader = await members.leader();
    const target = ['a', 'b', 'c'].find((id) => id !== leader.id)!;
    await expect(leader.transferLeadership(target)).resolves.toBe(target);
    expect(members.get(target).status().role).toBe('leader');
  });
});
