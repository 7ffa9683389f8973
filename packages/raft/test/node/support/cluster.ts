import { MemoryLogStorage } from '../../../src/consensus/storage.js';
import type { NodeId } from '../../../src/consensus/types.js';
import { RaftServer } from '../../../src/node/raft-server.js';
import type { RaftServerOptions } from '../../../src/node/options.js';
import { CounterStateMachine, encodeCommand, type CounterResult } from './counter-state.js';
import { InProcessNetwork } from './in-process-network.js';
import { MemoryDurableLog } from './memory-durable-log.js';

/** Server options a test may set; the cluster supplies the parts. */
export type ServerTuning = Partial<Omit<RaftServerOptions<CounterResult>, 'id' | 'voters' | 'log' | 'state' | 'connect'>>;

/** Fast defaults: 10 ms ticks, elections after 100–200 ms. */
export const FAST: ServerTuning = { tickMs: 10, electionTicks: 10, heartbeatTicks: 1, proposalTimeoutMs: 5_000 };

interface Member {
  readonly storage: MemoryLogStorage;
  state: CounterStateMachine;
  log: MemoryDurableLog | null;
  server: RaftServer<CounterResult> | null;
}

/**
 * Raft servers over in-memory logs, counter state machines and an in-process network. Each
 * member's storage and state outlive its server, so `stop` then `start` is a process restart.
 */
export class ServerCluster {
  readonly network = new InProcessNetwork();
  private readonly members = new Map<NodeId, Member>();

  constructor(
    readonly ids: readonly NodeId[],
    private readonly tuning: ServerTuning = FAST,
  ) {
    for (const id of ids)
      this.members.set(id, { storage: new MemoryLogStorage(), state: new CounterStateMachine(), log: null, server: null });
  }

  /** Starts (or restarts) `id`'s server; its storage and state carry over. */
  async start(id: NodeId, tuning: ServerTuning = {}): Promise<RaftServer<CounterResult>> {
    const member = this.member(id);
    if (member.server !== null) throw new Error(`${id} is running`);
    member.log = new MemoryDurableLog(member.storage);
    const seed = this.ids.indexOf(id) + 1;
    member.server = new RaftServer<CounterResult>({
      seed,
      ...this.tuning,
      ...tuning,
      id,
      voters: this.ids,
      log: member.log,
      state: member.state,
      connect: this.network.connector(id),
    });
    await member.server.start();
    return member.server;
  }

  async startAll(): Promise<void> {
    for (const id of this.ids) await this.start(id);
  }

  /**
   * Closes `id`'s server (a clean shutdown: storage and state survive). Without a leadership
   * handover unless asked: these tests stop a leader to see what the others do without it.
   */
  async stop(id: NodeId, transferLeadership = false): Promise<void> {
    const member = this.member(id);
    const server = member.server;
    member.server = null;
    await server?.close({ transferLeadership });
  }

  async close(): Promise<void> {
    for (const id of this.ids) await this.stop(id);
  }

  server(id: NodeId): RaftServer<CounterResult> {
    const server = this.member(id).server;
    if (server === null) throw new Error(`${id} is not running`);
    return server;
  }

  state(id: NodeId): CounterStateMachine {
    return this.member(id).state;
  }

  /** Replaces `id`'s state with a fresh, empty one (only while it is stopped). */
  wipeState(id: NodeId): CounterStateMachine {
    const member = this.member(id);
    if (member.server !== null) throw new Error(`${id} is running`);
    member.state = new CounterStateMachine();
    return member.state;
  }

  log(id: NodeId): MemoryDurableLog {
    const log = this.member(id).log;
    if (log === null) throw new Error(`${id} was never started`);
    return log;
  }

  storage(id: NodeId): MemoryLogStorage {
    return this.member(id).storage;
  }

  running(): NodeId[] {
    return this.ids.filter((id) => this.member(id).server !== null);
  }

  /** The node that is leader, among running ones, once exactly one claims it in the highest term. */
  async leader(among: readonly NodeId[] = this.running()): Promise<NodeId> {
    let found: NodeId | null = null;
    await waitFor(
      () => {
        const statuses = among.map((id) => this.server(id).status());
        const top = Math.max(...statuses.map((s) => s.term));
        const leaders = statuses.filter((s) => s.role === 'leader' && s.term === top);
        found = leaders.length === 1 ? (leaders[0]?.id ?? null) : null;
        return found !== null;
      },
      `a leader among ${among.join(',')}`,
    );
    return found as unknown as NodeId;
  }

  /** Waits until the given nodes hold the same state at the same applied index. */
  async converged(among: readonly NodeId[] = this.running()): Promise<void> {
    await waitFor(
      () => {
        const prints = among.map((id) => this.state(id).fingerprint());
        return prints.every((print) => print === prints[0]);
      },
      `convergence of ${among.join(',')}`,
    );
  }

  propose(id: NodeId, key: string, by = 1): Promise<CounterResult> {
    return this.server(id).propose(encodeCommand({ key, by }));
  }

  private member(id: NodeId): Member {
    const member = this.members.get(id);
    if (member === undefined) throw new Error(`no member ${id}`);
    return member;
  }
}

/** Polls `condition` every few milliseconds until it holds; fails after a generous `timeoutMs`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
