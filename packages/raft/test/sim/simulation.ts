import { MemoryLogStorage } from '../../src/consensus/storage.js';
import { RaftNode } from '../../src/consensus/raft.js';
import { ConfChangeInProgressError, LeadershipTransferInProgressError, NotLeaderError } from '../../src/consensus/errors.js';
import { SeededRandom } from '../../src/consensus/random.js';
import type { Message, Ready } from '../../src/consensus/types.js';
import type { RaftNodeConfig } from '../../src/consensus/config.js';
import { EventQueue } from './event-queue.js';
import { InvariantChecker } from './invariants.js';
import { MembershipChecker } from './membership-invariants.js';
import { checkHistory } from './linearizability.js';
import { AggregateStateMachine, fnv1a } from './state-machine.js';
import { Workload, type ClusterAccess } from './workload.js';

/** Builds the consensus core of a node; tests pass broken variants here. */
export type NodeFactory = (config: RaftNodeConfig) => RaftNode;

/** 'mixed': partitions, loss, duplication, delays, crashes and pauses; 'leader-churn': mostly leaders dying young. */
export type FaultSchedule = 'mixed' | 'leader-churn';

export interface SimulationOptions {
  readonly seed: number;
  /** Cluster size; by default 3 or 5, chosen by the seed. */
  readonly nodes?: number;
  /** Virtual milliseconds of chaos before healing. Default 4000. */
  readonly chaosMs?: number;
  readonly createNode?: NodeFactory;
  /** The fault schedule; by default about a third of the seeds get 'leader-churn', the rest 'mixed'. */
  readonly schedule?: FaultSchedule;
  /** Stop at the first violation (the broken-variant tests want speed, not a full report). */
  readonly stopAtFirstViolation?: boolean;
  /**
   * Membership changes (add a learner, promote, remove, including the leader) and leadership
   * transfers during the chaos; by default on for about two thirds of the seeds.
   */
  readonly membership?: boolean;
}

export interface SimulationStats {
  nodes: number;
  events: number;
  messagesSent: number;
  messagesDropped: number;
  messagesDuplicated: number;
  crashes: number;
  tornWrites: number;
  pauses: number;
  partitions: number;
  snapshotsSent: number;
  compactions: number;
  /** Membership changes appended by a leader, and leadership transfers started. */
  confChanges: number;
  transfers: number;
  leaderTerms: number;
  committed: number;
  operations: number;
  abandoned: number;
  virtualMs: number;
}

export interface SimulationResult {
  readonly seed: number;
  readonly violations: readonly string[];
  readonly traceHash: string;
  readonly stats: SimulationStats;
}

type SimEvent =
  | { readonly kind: 'tick'; readonly node: string; readonly incarnation: number }
  | { readonly kind: 'deliver'; readonly message: Message }
  | { readonly kind: 'persisted'; readonly node: string; readonly incarnation: number }
  | { readonly kind: 'snapshot-report'; readonly node: string; readonly to: string; readonly ok: boolean; readonly incarnation: number }
  | { readonly kind: 'fault' }
  | { readonly kind: 'membership' }
  | { readonly kind: 'restart'; readonly node: string }
  | { readonly kind: 'resume'; readonly node: string }
  | { readonly kind: 'crash'; readonly node: string; readonly incarnation: number }
  | { readonly kind: 'action'; readonly run: () => void };

interface SimNode {
  readonly id: string;
  /** Added by a membership change: starts knowing no configuration. */
  readonly joined: boolean;
  /** The node's disk: only what a persisted Ready wrote survives a crash. */
  readonly storage: MemoryLogStorage;
  raft: RaftNode | null;
  machine: AggregateStateMachine;
  incarnation: number;
  pausedUntil: number;
  readonly inbox: Message[];
  persisting: Ready | null;
  deferredPersist: boolean;
  /** The Ready's early messages wait for the write (a driver that does not overlap sending with fsync). */
  sendEarlyAfterWrite: boolean;
  /** The process dies right after the write is durable, before it sends or applies anything. */
  crashAfterWrite: boolean;
  /** Set on a brand-new leader: its next Ready is written, then it dies before sending anything. */
  crashOnNextWrite: boolean;
}

const TICK_MS = 10;
const LIVENESS_DEADLINE_MS = 30_000;
const SETTLE_MS = 2_000;

/** The reproduction command printed with every failure. */
export function reproduceCommand(seed: number, variant?: string): string {
  return `cd packages/raft && SIM_SEED=${seed}${variant === undefined ? '' : ` SIM_VARIANT=${variant}`} npx vitest run --config vitest.soak.config.ts`;
}

/**
 * A deterministic simulation of a Raft cluster: one seeded random source, a virtual clock, a
 * network that delays, drops, duplicates, reorders and partitions messages, disks that lose
 * whatever was not yet durable when a node crashes, and clients whose histories are checked for
 * linearizability. Same seed, same run.
 */
export class Simulation {
  private readonly random: SeededRandom;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly nodes = new Map<string, SimNode>();
  /** The bootstrap voters. */
  private readonly ids: string[];
  /** Every node ever started, joined ones included. */
  private readonly allIds: string[] = [];
  /** The members (voters and learners) of the latest configuration a leader was seen with. */
  private members: readonly string[];
  private readonly membershipChanges: boolean;
  private joinedCount = 0;
  private readonly checker: InvariantChecker;
  private readonly membershipChecker: MembershipChecker;
  private readonly workload: Workload;
  private readonly createNode: NodeFactory;
  private readonly chaosMs: number;
  private time = 0;
  private trace = 0x811c9dc5;
  private healed = false;
  private readonly leaderTermsSeen = new Set<number>();
  private readonly leaderCommit = new Map<string, number>();
  /** Directed links that drop everything: `${from}>${to}`. */
  private readonly cut = new Set<string>();
  private dropRate = 0;
  private duplicateRate = 0;
  private slowRate = 0;
  readonly stats: SimulationStats;
  readonly schedule: FaultSchedule;
  /** Per-seed knobs, so the seeds between them cover small and large messages, windows and fault rates. */
  private readonly profile: {
    maxMessageBytes: number;
    maxInflightMessages: number;
    crashDuringWrite: number;
    faultSpacingMs: number;
    crashNewLeader: number;
    deferEarlySends: number;
    crashAfterCommit: number;
    preVote: boolean;
    checkQuorum: boolean;
  };

  constructor(private readonly options: SimulationOptions) {
    this.random = new SeededRandom(options.seed);
    const size = options.nodes ?? (this.random.chance(0.6) ? 3 : 5);
    this.ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    this.chaosMs = options.chaosMs ?? 4000;
    this.createNode = options.createNode ?? ((config) => new RaftNode(config));
    this.checker = new InvariantChecker(() => this.time);
    this.membershipChecker = new MembershipChecker(
      {
        holds: (id, index, term) => {
          const storage = this.node(id).storage;
          if (storage.snapshot().meta.index >= index) return true;
          if (storage.lastIndex() < index) return false;
          return storage.term(index) === term;
        },
        scanBack: (id, from, visit) => {
          const storage = this.node(id).storage;
          for (let index = Math.min(from, storage.lastIndex()); index >= storage.firstIndex(); index--) {
            if (!visit(storage.entries(index, index + 1, Infinity)[0]!)) return;
          }
        },
      },
      (message) => this.violation(message),
    );
    this.stats = {
      nodes: size,
      events: 0,
      messagesSent: 0,
      messagesDropped: 0,
      messagesDuplicated: 0,
      crashes: 0,
      tornWrites: 0,
      pauses: 0,
      partitions: 0,
      snapshotsSent: 0,
      compactions: 0,
      confChanges: 0,
      transfers: 0,
      leaderTerms: 0,
      committed: 0,
      operations: 0,
      abandoned: 0,
      virtualMs: 0,
    };
    const access: ClusterAccess = {
      now: () => this.time,
      nodeIds: () => this.members,
      reachable: (id) => {
        const node = this.node(id);
        if (node.raft === null || node.pausedUntil > this.time) return null;
        return { raft: node.raft, machine: node.machine, incarnation: node.incarnation };
      },
      incarnation: (id) => this.node(id).incarnation,
      afterInput: (id) => {
        const node = this.node(id);
        if (node.raft !== null) this.observe(node, node.raft);
        this.pump(node);
      },
      schedule: (delay, run) => this.queue.push(this.time + delay, { kind: 'action', run }),
    };
    // About a third of the seeds run the "leader churn" nemesis: every new leader is likely to die at
    // once, often right after a commit or before its first append leaves, one entry per message.
    const churn = options.schedule === 'leader-churn' || (options.schedule === undefined && this.random.chance(0.35));
    this.schedule = churn ? 'leader-churn' : 'mixed';
    this.profile = churn
      ? {
          maxMessageBytes: 1,
          maxInflightMessages: pick(this.random, [1, 4]),
          crashDuringWrite: 0.05,
          faultSpacingMs: 500,
          crashNewLeader: 0.8,
          deferEarlySends: 0.5,
          crashAfterCommit: 0.5,
          preVote: this.random.chance(0.5),
          checkQuorum: this.random.chance(0.5),
        }
      : {
          maxMessageBytes: pick(this.random, [1, 256, 2048, 8192]),
          maxInflightMessages: pick(this.random, [1, 2, 4, 16]),
          crashDuringWrite: pick(this.random, [0, 0.02, 0.1]),
          faultSpacingMs: pick(this.random, [100, 250, 500]),
          crashNewLeader: pick(this.random, [0, 0, 0.3, 0.6]),
          deferEarlySends: pick(this.random, [0, 0.5, 1]),
          crashAfterCommit: pick(this.random, [0, 0, 0.1, 0.3]),
          preVote: this.random.chance(0.8),
          checkQuorum: this.random.chance(0.8),
        };
    this.members = this.ids;
    this.membershipChanges = options.membership ?? this.random.chance(0.65);
    const clients = Array.from({ length: 2 + this.random.nextInt(5) }, (_, i) => `c${i + 1}`);
    this.workload = new Workload(access, this.random.fork(), clients, ['a', 'b']);
  }

  run(): SimulationResult {
    for (const id of this.ids) this.addNode(id, false);
    this.workload.start();
    this.queue.push(this.random.nextInt(200), { kind: 'fault' });
    if (this.membershipChanges) this.queue.push(100 + this.random.nextInt(300), { kind: 'membership' });
    return this.finish();
  }

  private addNode(id: string, joined: boolean): SimNode {
    const node: SimNode = {
      id,
      joined,
      storage: new MemoryLogStorage(),
      raft: null,
      machine: new AggregateStateMachine(),
      incarnation: 0,
      pausedUntil: 0,
      inbox: [],
      persisting: null,
      deferredPersist: false,
      sendEarlyAfterWrite: false,
      crashAfterWrite: false,
      crashOnNextWrite: false,
    };
    this.nodes.set(id, node);
    this.allIds.push(id);
    this.start(node);
    return node;
  }

  private finish(): SimulationResult {
    // Chaos, then heal everything and wait for every pending operation to finish (liveness).
    this.runUntil(() => this.time >= this.chaosMs);
    this.heal();
    const deadline = this.time + LIVENESS_DEADLINE_MS;
    this.runUntil(() => this.workload.pendingCount() === 0 || this.time >= deadline);
    if (this.workload.pendingCount() > 0) {
      this.violation(
        `liveness: ${this.workload.pendingCount()} operations still pending ${LIVENESS_DEADLINE_MS} ms after the cluster healed`,
      );
    } else {
      const settle = this.time + SETTLE_MS;
      this.runUntil(() => this.time >= settle);
      this.checkConvergence();
      this.checkAcknowledgedWritesKept();
    }
    if (this.checker.violations.length === 0) {
      const result = checkHistory(this.workload.history);
      if (result.linearizable === false) {
        this.violation(
          `linearizability: history of aggregate ${result.aggregate} is not linearizable:\n${formatOperations(result.operations)}`,
        );
      } else if (result.linearizable === 'unknown') {
        this.violation(`linearizability: the checker gave up on aggregate ${result.aggregate} after ${result.explored} states`);
      }
    }
    this.stats.committed = this.checker.committedLength();
    this.stats.leaderTerms = this.checker.leaderTermCount();
    this.stats.operations = this.workload.history.length;
    this.stats.abandoned = this.workload.abandoned;
    this.stats.virtualMs = this.time;
    return {
      seed: this.options.seed,
      violations: this.checker.violations,
      traceHash: this.trace.toString(16).padStart(8, '0'),
      stats: this.stats,
    };
  }

  // ------------------------------------------------------------ event loop

  private runUntil(done: () => boolean): void {
    while (!done()) {
      if (this.options.stopAtFirstViolation === true && this.checker.violations.length > 0) return;
      const next = this.queue.pop();
      if (next === undefined) return;
      this.time = next.time;
      this.stats.events++;
      this.handle(next.item);
    }
  }

  private handle(event: SimEvent): void {
    this.trace = fnv1a(`${this.time}${event.kind}`, this.trace);
    switch (event.kind) {
      case 'tick': {
        const node = this.node(event.node);
        if (node.incarnation !== event.incarnation || node.raft === null) return;
        this.queue.push(this.time + TICK_MS + this.random.nextInt(2), event);
        if (node.pausedUntil > this.time) return;
        this.guard(node, (raft) => raft.tick());
        return;
      }
      case 'deliver':
        this.deliver(event.message);
        return;
      case 'persisted':
        this.finishPersist(event.node, event.incarnation);
        return;
      case 'snapshot-report': {
        const node = this.node(event.node);
        if (node.incarnation !== event.incarnation || node.raft === null) return;
        this.guard(node, (raft) => raft.reportSnapshot(event.to, event.ok));
        return;
      }
      case 'membership':
        if (!this.healed) {
          this.changeMembership();
          this.queue.push(this.time + 50 + this.random.nextInt(400), event);
        }
        return;
      case 'fault':
        if (!this.healed) {
          this.injectFault();
          this.queue.push(this.time + 20 + this.random.nextInt(this.profile.faultSpacingMs), event);
        }
        return;
      case 'restart':
        this.start(this.node(event.node));
        return;
      case 'resume':
        this.resume(this.node(event.node));
        return;
      case 'action':
        try {
          event.run();
        } catch (error) {
          this.violation(`core threw on a client call: ${error instanceof Error ? error.message : String(error)}`);
        }
        return;
      case 'crash': {
        const node = this.node(event.node);
        if (node.incarnation === event.incarnation) this.crash(node, 1 + this.random.nextInt(30));
        return;
      }
    }
  }

  /** Runs an input on a node's core; the core throwing is itself a violation. */
  private guard(node: SimNode, input: (raft: RaftNode) => void): void {
    const raft = node.raft;
    if (raft === null) return;
    try {
      input(raft);
    } catch (error) {
      this.violation(`core of ${node.id} threw: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    this.observe(node, raft);
    this.pump(node);
  }

  // ------------------------------------------------------------ node lifecycle and storage

  private start(node: SimNode): void {
    node.incarnation++;
    node.machine = AggregateStateMachine.restore(node.storage.snapshot().data);
    node.pausedUntil = 0;
    node.inbox.length = 0;
    node.persisting = null;
    node.deferredPersist = false;
    try {
      node.raft = this.createNode({
        id: node.id,
        voters: node.joined ? [] : this.ids,
        storage: node.storage,
        random: this.random.fork(),
        electionTicks: 10,
        heartbeatTicks: 1,
        preVote: this.profile.preVote,
        checkQuorum: this.profile.checkQuorum,
        maxMessageBytes: this.profile.maxMessageBytes,
        maxInflightMessages: this.profile.maxInflightMessages,
        maxInflightBytes: 8192,
        maxUncommittedBytes: 4096,
        applied: node.machine.applied,
      });
    } catch (error) {
      node.raft = null;
      this.violation(`${node.id} could not restart: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    this.queue.push(this.time + this.random.nextInt(TICK_MS), { kind: 'tick', node: node.id, incarnation: node.incarnation });
    this.pump(node);
  }

  private crash(node: SimNode, restartAfter = 10 + this.random.nextInt(600)): void {
    if (node.raft === null) return;
    this.stats.crashes++;
    const ready = node.persisting;
    // A write in progress may be torn: a prefix of its entries reaches the disk, nothing after.
    if (ready !== null && ready.hardState === null && ready.snapshot === null && ready.entries.length > 1 && this.random.chance(0.5)) {
      this.stats.tornWrites++;
      this.writeEntries(node, ready.entries.slice(0, 1 + this.random.nextInt(ready.entries.length - 1)));
    }
    node.raft = null;
    node.persisting = null;
    node.incarnation++;
    this.queue.push(this.time + restartAfter, { kind: 'restart', node: node.id });
  }

  /** Runs the invariant checks on a node's state; a brand-new leader may be doomed to crash soon (the Figure 8 history). */
  private observe(node: SimNode, raft: RaftNode): void {
    this.checker.observe(raft);
    this.membershipChecker.observe(raft);
    const status = raft.status();
    if (status.role === 'leader') {
      const config = raft.configuration();
      this.members = [...config.voters, ...config.learners];
    }
    if (status.role !== 'leader' || this.healed) return;
    const knownCommit = this.leaderCommit.get(node.id) ?? 0;
    this.leaderCommit.set(node.id, status.commit);
    if (status.commit > knownCommit && knownCommit > 0 && this.random.chance(this.profile.crashAfterCommit)) {
      // Dies the moment it learns of a commit, before telling anyone.
      this.crash(node, 1 + this.random.nextInt(30));
      return;
    }
    if (this.leaderTermsSeen.has(status.term)) return;
    this.leaderTermsSeen.add(status.term);
    if (!this.random.chance(this.profile.crashNewLeader)) return;
    if (this.random.chance(0.5) && node.persisting === null) {
      // Dies right after making its first entries durable, before anyone hears of them.
      node.crashOnNextWrite = true;
    } else {
      this.queue.push(this.time + 1 + this.random.nextInt(20), { kind: 'crash', node: node.id, incarnation: node.incarnation });
    }
  }

  /** Hands the node's next Ready to the "disk"; messages that need no durability go out now. */
  private pump(node: SimNode): void {
    const raft = node.raft;
    if (raft === null || node.persisting !== null || node.pausedUntil > this.time) return;
    if (!raft.hasReady()) return;
    const ready = raft.ready();
    this.membershipChecker.onLeaderEntries(raft, ready.entries);
    node.persisting = ready;
    node.sendEarlyAfterWrite = node.crashOnNextWrite || this.random.chance(this.profile.deferEarlySends);
    if (!node.sendEarlyAfterWrite) for (const message of ready.messages) this.send(message);
    const diskDelay = this.random.chance(0.1) ? 5 + this.random.nextInt(40) : 1 + this.random.nextInt(3);
    this.queue.push(this.time + diskDelay, { kind: 'persisted', node: node.id, incarnation: node.incarnation });
    node.crashAfterWrite = node.crashOnNextWrite;
    node.crashOnNextWrite = false;
    if (!this.healed && (ready.hardState !== null || ready.entries.length > 0) && this.random.chance(this.profile.crashDuringWrite)) {
      if (this.random.chance(0.5)) {
        // Power loss during the fsync; the process is restarted quickly.
        this.queue.push(this.time + this.random.nextInt(diskDelay), { kind: 'crash', node: node.id, incarnation: node.incarnation });
      } else {
        node.crashAfterWrite = true;
      }
    }
  }

  private finishPersist(id: string, incarnation: number): void {
    const node = this.node(id);
    const ready = node.persisting;
    const raft = node.raft;
    if (node.incarnation !== incarnation || ready === null || raft === null) return;
    if (node.pausedUntil > this.time) {
      node.deferredPersist = true;
      return;
    }
    if (ready.snapshot !== null) {
      node.storage.applySnapshot(ready.snapshot);
      node.machine = AggregateStateMachine.restore(ready.snapshot.data);
      this.checker.onSnapshotInstalled(node.id, ready.snapshot.meta.index, node.machine.chain);
    }
    this.writeEntries(node, ready.entries);
    if (ready.hardState !== null) {
      node.storage.setHardState(ready.hardState);
      this.checker.onDurableHardState(node.id, ready.hardState);
    }
    if (node.crashAfterWrite) {
      node.persisting = null;
      this.crash(node, 1 + this.random.nextInt(30));
      return;
    }
    if (node.sendEarlyAfterWrite) for (const message of ready.messages) this.send(message);
    for (const message of ready.messagesAfterPersist) this.send(message);
    for (const entry of ready.committedEntries) {
      if (entry.index <= node.machine.applied) continue;
      node.machine.apply(entry);
      this.checker.onApply(node.id, entry, node.machine.chain);
      this.workload.onApplied(node.id, entry, node.machine, node.incarnation);
    }
    for (const state of ready.readStates) this.workload.onReadState(node.id, state, node.incarnation);
    node.persisting = null;
    try {
      raft.advance(ready);
    } catch (error) {
      this.violation(`core of ${node.id} threw in advance: ${error instanceof Error ? error.message : String(error)}`);
    }
    this.observe(node, raft);
    this.workload.onAppliedUpTo(node.id, node.machine, node.incarnation);
    this.maybeCompact(node);
    this.pump(node);
  }

  private writeEntries(node: SimNode, entries: Ready['entries']): void {
    if (entries.length === 0) return;
    const storage = node.storage;
    const termAt = (index: number): number | null => {
      try {
        return storage.term(index);
      } catch {
        return null;
      }
    };
    this.checker.beforeDurableAppend(node.id, termAt, storage.lastIndex(), entries);
    storage.append(entries);
    this.checker.afterDurableAppend(termAt, entries);
  }

  /** Snapshots the state machine and drops old entries now and then, so lagging nodes need InstallSnapshot. */
  private maybeCompact(node: SimNode): void {
    const applied = node.machine.applied;
    if (applied - node.storage.firstIndex() < 20 + this.random.nextInt(30)) return;
    this.stats.compactions++;
    // The configuration as of the snapshot's index goes with it (the core knows it; membership changes).
    const config = node.raft?.configurationAt(applied) ?? this.ids;
    node.storage.createSnapshot(applied, config, node.machine.snapshot());
    node.storage.compact(applied - this.random.nextInt(5));
  }

  private pause(node: SimNode, until: number): void {
    node.pausedUntil = until;
    this.queue.push(until, { kind: 'resume', node: node.id });
  }

  private resume(node: SimNode): void {
    if (node.pausedUntil > this.time || node.raft === null) return;
    const inbox = node.inbox.splice(0);
    for (const message of inbox) this.guard(node, (raft) => raft.step(message));
    if (node.deferredPersist) {
      node.deferredPersist = false;
      this.finishPersist(node.id, node.incarnation);
    }
    this.pump(node);
  }

  // ------------------------------------------------------------ network

  private send(message: Message): void {
    this.stats.messagesSent++;
    this.checker.onSend(message);
    const from = this.node(message.from);
    if (message.type === 'snapshot') this.stats.snapshotsSent++;
    if (this.cut.has(`${message.from}>${message.to}`) || this.random.chance(this.dropRate)) {
      this.stats.messagesDropped++;
      if (message.type === 'snapshot') {
        this.queue.push(this.time + 1 + this.random.nextInt(20), {
          kind: 'snapshot-report',
          node: message.from,
          to: message.to,
          ok: false,
          incarnation: from.incarnation,
        });
      }
      return;
    }
    this.queue.push(this.time + this.networkDelay(), { kind: 'deliver', message });
    if (this.random.chance(this.duplicateRate)) {
      this.stats.messagesDuplicated++;
      this.queue.push(this.time + this.networkDelay(), { kind: 'deliver', message });
    }
  }

  private networkDelay(): number {
    if (this.random.chance(this.slowRate)) return 20 + this.random.nextInt(300);
    return 1 + this.random.nextInt(8);
  }

  private deliver(message: Message): void {
    const to = this.node(message.to);
    this.trace = fnv1a(`${message.type}${message.from}${message.to}${message.term}`, this.trace);
    const lost = to.raft === null || this.cut.has(`${message.from}>${message.to}`);
    if (message.type === 'snapshot') {
      const from = this.node(message.from);
      this.queue.push(this.time + 1, {
        kind: 'snapshot-report',
        node: message.from,
        to: message.to,
        ok: !lost,
        incarnation: from.incarnation,
      });
    }
    if (lost) {
      this.stats.messagesDropped++;
      return;
    }
    if (to.pausedUntil > this.time) {
      to.inbox.push(message);
      return;
    }
    this.guard(to, (raft) => raft.step(message));
  }

  // ------------------------------------------------------------ faults

  private injectFault(): void {
    const roll = this.random.nextInt(100);
    const up = this.allIds.filter((id) => this.node(id).raft !== null);
    const leader = this.currentLeader();
    if (roll < 15) {
      // Symmetric partition into two random sides (majority/minority, or an even split of nothing).
      this.cut.clear();
      const side = new Set(this.allIds.filter(() => this.random.chance(0.5)));
      for (const a of this.allIds) for (const b of this.allIds) if (side.has(a) !== side.has(b)) this.cut.add(`${a}>${b}`);
      this.stats.partitions++;
    } else if (roll < 25 && leader !== null) {
      // Isolate the leader entirely.
      for (const other of this.allIds) if (other !== leader) this.cut.add(`${leader}>${other}`).add(`${other}>${leader}`);
      this.stats.partitions++;
    } else if (roll < 35) {
      // Asymmetric: random one-way links fail (e.g. a leader that can send but not hear).
      for (const a of this.allIds) for (const b of this.allIds) if (a !== b && this.random.chance(0.25)) this.cut.add(`${a}>${b}`);
      this.stats.partitions++;
    } else if (roll < 55) {
      this.cut.clear();
    } else if (roll < 70 && up.length > 0) {
      const victim = leader !== null && this.random.chance(0.4) ? leader : up[this.random.nextInt(up.length)]!;
      this.crash(this.node(victim));
    } else if (roll < 80 && up.length > 0) {
      this.stats.pauses++;
      const victim = leader !== null && this.random.chance(0.4) ? leader : up[this.random.nextInt(up.length)]!;
      this.pause(this.node(victim), this.time + 100 + this.random.nextInt(700));
    } else {
      this.dropRate = [0, 0, 0.02, 0.1, 0.3][this.random.nextInt(5)]!;
      this.duplicateRate = [0, 0.05, 0.2][this.random.nextInt(3)]!;
      this.slowRate = [0, 0.02, 0.1, 0.3][this.random.nextInt(4)]!;
    }
  }

  // ------------------------------------------------------------ membership

  /**
   * One membership step on the current leader: a leadership transfer, or a single-server change
   * (add a new node as a learner, promote a learner, remove a learner or a voter — the leader
   * too). Refusals the core is meant to give (a change in flight, a transfer under way) are fine.
   */
  private changeMembership(): void {
    const leaderId = this.currentLeader();
    if (leaderId === null) return;
    const leader = this.node(leaderId);
    const raft = leader.raft;
    if (raft === null || leader.pausedUntil > this.time) return;
    const config = raft.configuration();
    const others = config.voters.filter((id) => id !== leaderId);
    const run = (input: (core: RaftNode) => void): void => this.guard(leader, input);
    const refusable = (error: unknown): boolean =>
      error instanceof ConfChangeInProgressError || error instanceof LeadershipTransferInProgressError || error instanceof NotLeaderError;
    const attempt = (input: (core: RaftNode) => void, count: () => void): void =>
      run((core) => {
        try {
          input(core);
          count();
        } catch (error) {
          if (!refusable(error)) throw error;
        }
      });
    if (this.random.chance(0.3) && others.length > 0) {
      const to = others[this.random.nextInt(others.length)]!;
      attempt(
        (core) => core.transferLeadership(to),
        () => this.stats.transfers++,
      );
      return;
    }
    const counted = (): void => {
      this.stats.confChanges++;
    };
    const learner = config.learners[0];
    if (learner !== undefined) {
      const type = this.random.chance(0.75) ? 'promote' : 'remove';
      attempt((core) => core.proposeConfChange({ type, node: learner }), counted);
    } else if (config.voters.length < 5 && (config.voters.length < 3 || this.random.chance(0.5)) && this.joinedCount < 6) {
      const id = `j${++this.joinedCount}`;
      this.addNode(id, true);
      attempt((core) => core.proposeConfChange({ type: 'add-learner', node: id, address: `${id}.sim:1` }), counted);
    } else if (config.voters.length > 2) {
      // Now and then the leader removes itself.
      const victim = this.random.chance(0.25) ? leaderId : config.voters[this.random.nextInt(config.voters.length)]!;
      attempt((core) => core.proposeConfChange({ type: 'remove', node: victim }), counted);
    }
  }

  private heal(): void {
    this.healed = true;
    this.workload.stopIssuing();
    this.cut.clear();
    this.dropRate = 0;
    this.duplicateRate = 0;
    this.slowRate = 0;
    for (const node of this.nodes.values()) if (node.raft === null) this.start(node);
  }

  private currentLeader(): string | null {
    let best: { id: string; term: number } | null = null;
    for (const node of this.nodes.values()) {
      const status = node.raft?.status();
      if (status?.role === 'leader' && (best === null || status.term > best.term)) best = { id: node.id, term: status.term };
    }
    return best?.id ?? null;
  }

  /** The nodes of the final configuration (removed ones are left behind by design). */
  private finalMembers(): SimNode[] {
    const leader = this.currentLeader();
    const config = leader === null ? null : this.node(leader).raft?.configuration();
    const ids = config === null || config === undefined ? this.members : [...config.voters, ...config.learners];
    return ids.map((id) => this.node(id));
  }

  private checkConvergence(): void {
    const members = this.finalMembers();
    const first = members[0]!;
    for (const node of members) {
      if (node.machine.applied !== first.machine.applied || node.machine.chain !== first.machine.chain) {
        this.violation(
          `convergence: ${node.id} applied ${node.machine.applied} (chain ${node.machine.chain}) but ${first.id} applied ${first.machine.applied} (chain ${first.machine.chain}) after healing`,
        );
        return;
      }
    }
  }

  /** Every append a client saw succeed is in every node's final state, at the sequence it was told. */
  private checkAcknowledgedWritesKept(): void {
    for (const op of this.workload.history) {
      if (op.input.kind !== 'append' || op.output?.kind !== 'append-ok') continue;
      for (const node of this.finalMembers()) {
        const stored = node.machine.read(op.aggregate)[op.output.sequence];
        if (stored !== op.input.value) {
          this.violation(
            `acknowledged write lost: ${op.input.value} was acknowledged at ${op.aggregate}[${op.output.sequence}] but ${node.id} holds ${stored ?? 'nothing'} there`,
          );
          return;
        }
      }
    }
  }

  private violation(message: string): void {
    this.checker.violations.push(`t=${this.time} ${message}`);
  }

  private node(id: string): SimNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`unknown node ${id}`);
    return node;
  }
}

function formatOperations(
  operations: readonly { client: string; calledAt: number; returnedAt: number | null; input: unknown; output: unknown }[],
): string {
  return operations
    .map((op) => `  ${op.client} [${op.calledAt}, ${op.returnedAt ?? '∞'}] ${JSON.stringify(op.input)} -> ${JSON.stringify(op.output)}`)
    .join('\n');
}

function pick<T>(random: SeededRandom, choices: readonly T[]): T {
  return choices[random.nextInt(choices.length)]!;
}

/** Runs one seed. */
export function simulate(options: SimulationOptions): SimulationResult {
  return new Simulation(options).run();
}
