import { MemoryLogStorage } from '../../src/consensus/storage.js';
import { RaftNode } from '../../src/consensus/raft.js';
import { SeededRandom } from '../../src/consensus/random.js';
import type { Entry, Message, ReadState } from '../../src/consensus/types.js';
import type { RaftNodeConfig } from '../../src/consensus/config.js';
import type { ConfChange } from '../../src/consensus/membership.js';

/** Options for a {@link TestCluster}; anything not given uses the node defaults. */
export type ClusterNodeOptions = Partial<Omit<RaftNodeConfig, 'id' | 'voters' | 'storage' | 'random'>>;

interface TestMember {
  raft: RaftNode | null;
  readonly storage: MemoryLogStorage;
  readonly applied: Entry[];
  readonly readStates: ReadState[];
  /** Messages this member sent, in order (for assertions). */
  readonly sent: Message[];
}

/**
 * A synchronous network of real `RaftNode`s over in-memory storage, in the style of etcd's
 * `network` test helper: `flush()` persists every Ready, delivers every message (unless a link
 * is cut or a filter drops it) and repeats until nothing moves.
 */
export class TestCluster {
  readonly members = new Map<string, TestMember>();
  private readonly cut = new Set<string>();
  private readonly filters: ((message: Message) => boolean)[] = [];
  private readonly random: SeededRandom;
  /** Members added after bootstrap: they start with no configuration and learn it from the leader. */
  private readonly joined = new Set<string>();

  constructor(
    readonly ids: readonly string[],
    private readonly options: ClusterNodeOptions = {},
    private readonly createNode: (config: RaftNodeConfig) => RaftNode = (config) => new RaftNode(config),
    seed = 1,
  ) {
    this.random = new SeededRandom(seed);
    for (const id of ids) {
      const member: TestMember = { raft: null, storage: new MemoryLogStorage(), applied: [], readStates: [], sent: [] };
      this.members.set(id, member);
      member.raft = this.build(id, member.storage);
    }
  }

  /** Starts a brand-new node `id` that knows no configuration yet (add it with a membership change). */
  join(id: string): RaftNode {
    const member: TestMember = { raft: null, storage: new MemoryLogStorage(), applied: [], readStates: [], sent: [] };
    this.members.set(id, member);
    this.joined.add(id);
    member.raft = this.build(id, member.storage);
    return member.raft;
  }

  private build(id: string, storage: MemoryLogStorage): RaftNode {
    return this.createNode({
      electionTicks: 10,
      heartbeatTicks: 1,
      ...this.options,
      id,
      voters: this.joined.has(id) ? [] : this.ids,
      storage,
      random: this.random.fork(),
    });
  }

  member(id: string): TestMember {
    const member = this.members.get(id);
    if (member === undefined) throw new Error(`no member ${id}`);
    return member;
  }

  node(id: string): RaftNode {
    const raft = this.member(id).raft;
    if (raft === null) throw new Error(`${id} is down`);
    return raft;
  }

  /** Cuts both directions between `a` and every node in `others` (all other nodes by default). */
  isolate(a: string, others: readonly string[] = this.ids): void {
    for (const b of others) {
      if (b === a) continue;
      this.cut.add(`${a}>${b}`).add(`${b}>${a}`);
    }
  }

  cutLink(from: string, to: string): void {
    this.cut.add(`${from}>${to}`);
  }

  /** Drops every message for which `predicate` is true, until `heal()`. */
  drop(predicate: (message: Message) => boolean): void {
    this.filters.push(predicate);
  }

  heal(): void {
    this.cut.clear();
    this.filters.length = 0;
  }

  /** Makes `id` (the leader) propose a membership change and settles the cluster; returns the entry's index. */
  change(id: string, change: ConfChange): number {
    const index = this.node(id).proposeConfChange(change);
    this.flush();
    return index;
  }

  /** Stops a node; only what it persisted survives. */
  crash(id: string): void {
    this.member(id).raft = null;
  }

  restart(id: string): void {
    const member = this.member(id);
    member.raft = this.build(id, member.storage);
    member.applied.length = 0;
  }

  tick(id: string, times = 1): void {
    for (let i = 0; i < times; i++) this.node(id).tick();
    this.flush();
  }

  /** Persists, sends and applies until the cluster is quiet. */
  flush(limit = 100_000): void {
    const inFlight: Message[] = [];
    for (let round = 0; round < limit; round++) {
      for (const member of this.members.values()) {
        const raft = member.raft;
        if (raft === null) continue;
        while (raft.hasReady()) {
          const ready = raft.ready();
          if (ready.snapshot !== null) member.storage.applySnapshot(ready.snapshot);
          member.storage.append(ready.entries);
          if (ready.hardState !== null) member.storage.setHardState(ready.hardState);
          for (const message of [...ready.messages, ...ready.messagesAfterPersist]) {
            member.sent.push(message);
            inFlight.push(message);
          }
          member.applied.push(...ready.committedEntries);
          member.readStates.push(...ready.readStates);
          raft.advance(ready);
        }
      }
      const message = inFlight.shift();
      if (message === undefined) return;
      this.deliver(message);
    }
    throw new Error('cluster did not settle');
  }

  /** Delivers one message now (used by tests that hand-craft messages). */
  deliver(message: Message): void {
    if (this.cut.has(`${message.from}>${message.to}`)) return;
    if (this.filters.some((drop) => drop(message))) return;
    const target = this.members.get(message.to)?.raft;
    if (target === undefined || target === null) return;
    target.step(message);
  }

  /** Makes `id` campaign and settles the cluster. */
  campaign(id: string): void {
    this.node(id).campaign();
    this.flush();
  }

  propose(id: string, proposalId: string, text = proposalId): void {
    this.node(id).propose(proposalId, new TextEncoder().encode(text));
    this.flush();
  }

  leaderOf(): string | null {
    for (const [id, member] of this.members) if (member.raft?.status().role === 'leader') return id;
    return null;
  }

  /** Proposal IDs `id` applied, in order. */
  appliedIds(id: string): (string | null)[] {
    return this.member(id).applied.map((entry) => entry.proposalId);
  }

  /** The (index, term) pairs of `id`'s durable log after its snapshot. */
  durableLog(id: string): string[] {
    const storage = this.member(id).storage;
    const out: string[] = [];
    for (let index = storage.firstIndex(); index <= storage.lastIndex(); index++) out.push(`${index}@${storage.term(index)}`);
    return out;
  }
}
