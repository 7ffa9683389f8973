import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { InvalidArgumentError, StoreClosedError } from '@timebox/core';
import { ConfChangeInProgressError, NotLeaderError } from '../consensus/errors.js';
import type { ConfChange, Configuration } from '../consensus/membership.js';
import { RaftNode } from '../consensus/raft.js';
import type { Message, NodeId, RaftRole } from '../consensus/types.js';
import { ConditionWaiters } from './conditions.js';
import { LeadershipTransferFailedError, MembershipChangeFailedError, RaftNodeFailedError, RaftUnavailableError } from './errors.js';
import { resolveRaftServerOptions, type RaftServerOptions, type ResolvedRaftServerOptions } from './options.js';
import type { Replicator, Transport } from './ports.js';
import { packProposals } from './proposal-batches.js';
import { ProposalTracker } from './proposals.js';
import { ReadBarrier } from './read-barrier.js';
import { ReadyLoop } from './ready-loop.js';
import { SnapshotPolicy } from './snapshot-policy.js';

/** Where a member's Raft server is in its life. */
export type RaftServerLifecycle = 'new' | 'running' | 'failed' | 'closed';

/** A snapshot of a server's state, for tests and diagnostics. */
export interface RaftServerStatus {
  readonly id: NodeId;
  readonly lifecycle: RaftServerLifecycle;
  readonly role: RaftRole;
  readonly term: number;
  readonly leader: NodeId | null;
  readonly commit: number;
  /** What the state machine has applied (durably). */
  readonly applied: number;
  readonly lastIndex: number;
  /** The index of the latest snapshot in the log (local or from the leader). */
  readonly snapshotIndex: number;
  readonly pendingProposals: number;
}

/**
 * One Raft node of a cluster: drives the consensus core (`RaftNode`) on a timer, carries out its
 * work through the durable log, the transport and the state machine, and answers proposals once
 * applied locally.
 *
 * Ownership: the server owns the `log` and the transport (it closes both in `close()`); the
 * `state` belongs to whoever created it, who closes it after `close()` resolved.
 *
 * A failure of the log, the state machine or the core is fatal: the node stops (it never runs on
 * a half-written state), everything pending rejects with `RaftNodeFailedError`, and so does every
 * later call. Restart the process: log and state recover from disk.
 */
export class RaftServer<Result> implements Replicator<Result> {
  readonly id: NodeId;
  private readonly options: ResolvedRaftServerOptions<Result>;
  private readonly node: RaftNode;
  private readonly proposals: ProposalTracker<Result>;
  private readonly reads: ReadBarrier;
  private readonly snapshots: SnapshotPolicy;
  private readonly conditions = new ConditionWaiters();
  private reportedConfiguration: Configuration | null = null;
  private loop: ReadyLoop<Result> | null = null;
  private transport: Transport | null = null;
  private transportClosed: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private submitTimer: NodeJS.Immediate | null = null;
  private ticks = 0;
  private observedLeader: NodeId | null = null;
  private observedTerm = 0;
  private lastLeader: NodeId | null = null;
  private lastTerm = 0;
  private starting: Promise<void> | null = null;
  private readySignal: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  private closed = false;
  private failure: RaftNodeFailedError | null = null;
  /**
   * Proposal IDs are this prefix (random, new for every server object, so IDs never repeat across
   * restarts) and a counter: unique like random IDs, and short.
   */
  private readonly proposalPrefix = `${randomBytes(12).toString('base64url')}:`;
  private proposalCounter = 0;

  /**
   * Validates the options (`ConfigError` naming the field) and builds the consensus core from the
   * log's stored state. The log must already be open. Nothing runs until `start()`.
   */
  constructor(options: RaftServerOptions<Result>) {
    this.options = resolveRaftServerOptions(options);
    const { id, voters, log, state, random, electionTicks, heartbeatTicks, consensus } = this.options;
    this.id = id;
    const snapshotIndex = log.snapshot().meta.index;
    const stateApplied = state.appliedIndex();
    if (stateApplied > log.lastIndex()) {
      throw new RaftNodeFailedError(
        id,
        new Error(
          `the state has applied index ${stateApplied}, beyond the log's last index ${log.lastIndex()}: the log lost entries the state holds`,
        ),
      );
    }
    // After start() the state is at least at the snapshot; entries it holds past the durable commit are skipped when applied.
    const applied = Math.min(Math.max(stateApplied, snapshotIndex), log.hardState().commit);
    // A joining node starts with no configuration: it learns it from the leader (and never campaigns before).
    const bootstrap = this.options.join ? [] : voters;
    this.node = new RaftNode({ ...consensus, id, voters: bootstrap, storage: log, random, electionTicks, heartbeatTicks, applied });
    const retryTicks = 2 * electionTicks;
    this.proposals = new ProposalTracker<Result>(
      { unavailable: () => this.unavailable(), now: () => performance.now() },
      this.options.proposalTimeoutMs,
      retryTicks,
    );
    this.reads = new ReadBarrier((context) => this.node.readIndex(context), retryTicks);
    this.snapshots = new SnapshotPolicy(
      log,
      state,
      (index) => this.node.configurationAt(index),
      this.options.snapshotEvery,
      this.options.compactionMargin,
    );
  }

  /**
   * Joins the cluster: restores the state from the log's snapshot if it is behind it, connects
   * the transport and starts ticking. Idempotent; `propose` and `ready` call it themselves.
   */
  start(): Promise<void> {
    this.starting ??= this.open();
    return this.starting;
  }

  /**
   * Proposes `command` (forwarded to the leader when this node is not it) and resolves with its
   * result once it is committed and applied on this node.
   *
   * While no leader is known (or the leader's uncommitted tail is full) the proposal waits and is
   * offered again with the same proposal ID, as it is after a leader change; the state machine
   * applies one ID once. After `proposalTimeoutMs` it rejects with `RaftUnavailableError`.
   * **That outcome is ambiguous**, as with any lost reply: the proposal may already sit in a
   * leader's log and still commit (and apply on every node) later.
   *
   * A write's path, top to bottom: the tracker records the proposal and offers it;
   * `submitProposals` hands the offers of one event-loop turn to the core together (one envelope
   * entry); the ready loop makes the core's work durable, replicates it and, once committed,
   * applies it; `onApplied` settles this promise with the state machine's result. Meanwhile every
   * tick may offer it again (`ProposalTracker.onTick`) or reject it once its time ran out.
   *
   * @throws InvalidArgumentError when `command` is not a `Uint8Array`. StoreClosedError after
   * `close()`. RaftNodeFailedError after a fatal error.
   */
  async propose(command: Uint8Array): Promise<Result> {
    if (!(command instanceof Uint8Array)) throw new InvalidArgumentError('command', 'must be a Uint8Array', command);
    await this.start();
    this.assertOpen('propose');
    const result = this.proposals.track(this.nextProposalId(), command, this.ticks);
    this.submitSoon();
    this.loop?.schedule();
    return result;
  }

  /**
   * Resolves once this node knows a leader and has applied everything committed when it asked
   * (a ReadIndex through the leader). Waits as long as it takes — there is no timeout — until
   * `close()` (StoreClosedError) or a fatal error (RaftNodeFailedError). Once resolved it answers
   * at once, until the node is closed or fails.
   */
  ready(): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new StoreClosedError('wait for readiness'));
    this.readySignal ??= this.awaitReady();
    return this.readySignal;
  }

  /**
   * A linearizable read barrier: resolves once this node has applied everything committed
   * cluster-wide when it was called (a ReadIndex through the leader, which first confirms its
   * leadership with a quorum), so a read of the local state after it sees every write acknowledged
   * before the call, on any node. Unlike `ready()` it asks again on every call. Rejects with
   * `RaftUnavailableError` when no leader answers within `proposalTimeoutMs`.
   */
  async readBarrier(): Promise<void> {
    await this.start();
    this.assertOpen('read');
    const reached = this.reads.wait(this.ticks);
    this.loop?.schedule();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.unavailable()), this.options.proposalTimeoutMs);
    });
    try {
      await Promise.race([reached, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The node's current state, for tests and diagnostics. */
  status(): RaftServerStatus {
    const core = this.node.status();
    const lifecycle: RaftServerLifecycle =
      this.failure !== null ? 'failed' : this.closed ? 'closed' : this.starting !== null ? 'running' : 'new';
    return {
      id: this.id,
      lifecycle,
      role: core.role,
      term: core.term,
      leader: core.leader,
      commit: core.commit,
      applied: this.closed ? core.applied : this.options.state.appliedIndex(),
      lastIndex: core.lastIndex,
      snapshotIndex: this.snapshots.snapshotIndex,
      pendingProposals: this.proposals.size,
    };
  }

  /** The configuration in force on this node (the latest in its log, committed or not). */
  configuration(): Configuration {
    return this.node.configuration();
  }

  /**
   * Makes one single-server membership change through this node, which must be the leader, and
   * resolves once it is committed (the new configuration is in force from then on everywhere).
   * One change at a time: while another change (or a new leader's first entry) is uncommitted, it
   * waits for that to commit first, up to `proposalTimeoutMs`.
   * @throws NotLeaderError on a follower (it names the leader). ConfChangeInProgressError when the
   * change before it did not commit within `proposalTimeoutMs`. InvalidConfChangeError when the
   * change does not apply. LeadershipTransferInProgressError during a transfer.
   * MembershipChangeFailedError when it was lost to a leader change or did not commit within
   * `proposalTimeoutMs`.
   */
  async changeMembership(change: ConfChange): Promise<void> {
    await this.start();
    this.assertOpen('change the membership');
    let index = 0;
    let term = 0;
    const propose = (): void =>
      this.guardOrThrow(() => {
        index = this.node.proposeConfChange(change);
        term = this.node.status().term;
      });
    // Serialize behind the change in flight rather than hand the caller a retry loop: right after
    // an election or a transfer the new leader's own first entry counts as one, and concurrent
    // calls take turns.
    const deadline = performance.now() + this.options.proposalTimeoutMs;
    for (;;) {
      try {
        propose();
        break;
      } catch (error) {
        const leftMs = deadline - performance.now();
        if (!(error instanceof ConfChangeInProgressError) || leftMs <= 0) throw error;
        await this.conditions.wait(
          () => this.node.status().role !== 'leader' || this.node.status().commit >= error.pendingIndex,
          leftMs,
          () => error,
        );
        this.assertOpen('change the membership');
      }
    }
    await this.conditions.wait(
      () => {
        const at = this.node.termAt(index);
        if (at !== null && at !== term) throw new MembershipChangeFailedError(this.id, 'a new leader replaced it in the log');
        return at === term && this.node.status().commit >= index;
      },
      this.options.proposalTimeoutMs,
      () => new MembershipChangeFailedError(this.id, `not committed within ${this.options.proposalTimeoutMs} ms (it may still commit)`),
    );
  }

  /**
   * Hands leadership to voter `to` (by default the most up-to-date other voter) and resolves with
   * the new leader once this node hears from it. Meanwhile this node takes no proposals (they
   * wait and are retried on the new leader). Resolves with null when there is no other voter.
   * @throws NotLeaderError on a follower. InvalidTransferError when `to` is not a voter.
   * LeadershipTransferFailedError when no one took over within two election timeouts.
   */
  async transferLeadership(to?: NodeId): Promise<NodeId | null> {
    await this.start();
    this.assertOpen('transfer leadership');
    const status = this.node.status();
    if (status.role !== 'leader') throw new NotLeaderError(this.id, status.leader, 'transfer leadership');
    const target = to ?? this.mostUpToDateVoter();
    if (target === null) return null;
    this.guardOrThrow(() => this.node.transferLeadership(target));
    const waitMs = 2 * this.options.electionTicks * this.options.tickMs;
    await this.conditions.wait(
      () => {
        const now = this.node.status();
        return now.leader !== null && now.leader !== this.id;
      },
      waitMs,
      () => new LeadershipTransferFailedError(this.id, target, waitMs),
    );
    return this.node.status().leader;
  }

  /**
   * Leaves the cluster: a leader first hands leadership over (unless `transferLeadership` is
   * false), so the others need not wait an election timeout; then it stops ticking, rejects
   * pending proposals and waits with StoreClosedError, lets an in-progress log write finish, and
   * closes the transport and the log. The state machine is not closed (its owner does that after
   * this resolves). Idempotent.
   */
  close(options: { readonly transferLeadership?: boolean } = {}): Promise<void> {
    this.closing ??= this.handOver(options.transferLeadership !== false).then(() => this.shutdown());
    return this.closing;
  }

  /**
   * Before closing a leader: transfer leadership to a voter heard from lately, as far as that goes
   * (a failure only means an election later). With no such voter (the last member of a cluster
   * being shut down) there is no one to hand over to, and closing does not wait.
   */
  private async handOver(transfer: boolean): Promise<void> {
    if (!transfer || this.starting === null || this.failure !== null || this.closed) return;
    if (this.node.status().role !== 'leader') return;
    const target = this.mostUpToDateVoter(true);
    if (target === null) return;
    await this.transferLeadership(target).catch(() => undefined);
  }

  /** The other voter with the highest match index (among those heard from lately, if asked), or null. */
  private mostUpToDateVoter(activeOnly = false): NodeId | null {
    let best: { id: NodeId; match: number } | null = null;
    const progress = this.node.followerProgress();
    for (const voter of this.node.voters) {
      if (voter === this.id) continue;
      const state = progress.get(voter);
      if (activeOnly && state?.recentActive !== true) continue;
      const match = state?.match ?? 0;
      if (best === null || match > best.match) best = { id: voter, match };
    }
    return best?.id ?? null;
  }

  /** Runs an input the caller expects may throw a typed refusal: the refusal goes to the caller, the loop wakes. */
  private guardOrThrow(input: () => void): void {
    input();
    this.afterInput();
  }

  /**
   * A fresh proposal ID: the prefix (96 random bits) and a fixed-width base-36 counter, so IDs sort
   * in issue order. 27 characters: every ID travels in the log and the messages and is hashed by
   * the state's table of applied proposals on every node.
   */
  private nextProposalId(): string {
    return this.proposalPrefix + (this.proposalCounter++).toString(36).padStart(10, '0');
  }

  /** The error of a call that ran out of time, saying whether a leader was known at that moment. */
  private unavailable(): RaftUnavailableError {
    return new RaftUnavailableError(this.id, this.options.proposalTimeoutMs, this.lastLeader, this.lastTerm, this.node.status().leader);
  }

  // ---------------------------------------------------------------- lifecycle

  private async open(): Promise<void> {
    this.assertOpen('start');
    const { log, state, connect, tickMs } = this.options;
    const snapshot = log.snapshot();
    // A crash between installing the leader's snapshot in the log and restoring the state leaves the state behind it.
    if (state.appliedIndex() < snapshot.meta.index) {
      try {
        await state.restoreSnapshot(snapshot.data, snapshot.meta.index);
      } catch (error) {
        this.fail(error);
      }
    }
    this.assertOpen('start');
    this.loop = new ReadyLoop<Result>(this.node, log, state, {
      send: (message) => this.transport?.send(message),
      onSnapshotInstalled: (index, bytes) => this.snapshots.installed(index, bytes),
      onApplied: (entries, results) => {
        this.snapshots.applied(entries);
        this.proposals.onApplied(entries, results);
        this.conditions.poll();
      },
      onReadStates: (states, applied) => {
        this.reads.onReadStates(states);
        this.reads.onApplied(applied);
      },
      beforeTurn: () => this.submitProposals(),
      applyIsUrgent: () => this.proposals.size > 0 || this.reads.size > 0 || this.options.state.wantsPromptApply?.() === true,
      afterTurn: async () => {
        await this.snapshots.writeExported();
        // The export runs beside the loop; its image comes back here through requestAfterTurn.
        this.snapshots.startExportIfDue(
          () => this.loop?.requestAfterTurn(),
          (error) => this.fail(error),
        );
      },
      onFatal: (error) => this.fail(error),
    });
    this.transport = connect({
      onMessage: (message) => this.onMessage(message),
      onUnreachable: (peer) => this.guard(() => this.node.reportUnreachable(peer)),
      onSnapshotSent: (peer, ok) => this.guard(() => this.node.reportSnapshot(peer, ok)),
    });
    this.timer = setInterval(() => this.onTick(), tickMs);
    this.timer.unref();
    this.afterInput();
  }

  private async awaitReady(): Promise<void> {
    await this.start();
    this.assertOpen('wait for readiness');
    const reached = this.reads.wait(this.ticks);
    this.loop?.schedule();
    await reached;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    this.stopTicking();
    this.stopSubmitting();
    this.conditions.rejectAll(new StoreClosedError('wait for the cluster'));
    this.proposals.rejectAll(new StoreClosedError('propose'));
    this.reads.rejectAll(new StoreClosedError('wait for readiness'));
    await this.starting?.catch(() => undefined);
    this.stopTicking();
    await this.loop?.stop();
    await this.snapshots.stop();
    await this.closeTransport();
    await this.options.log.close();
  }

  private fail(error: unknown): void {
    if (this.failure !== null || this.closed) return;
    this.failure = error instanceof RaftNodeFailedError ? error : new RaftNodeFailedError(this.id, error);
    this.stopTicking();
    this.stopSubmitting();
    void this.loop?.stop();
    void this.snapshots.stop();
    this.proposals.rejectAll(this.failure);
    this.reads.rejectAll(this.failure);
    this.conditions.rejectAll(this.failure);
    // A failed node must stop voting and acknowledging at once; the log stays open until close().
    void this.closeTransport().catch(() => undefined);
  }

  private assertOpen(operation: string): void {
    if (this.failure !== null) throw this.failure;
    if (this.closed) throw new StoreClosedError(operation);
  }

  private stopTicking(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private stopSubmitting(): void {
    if (this.submitTimer !== null) clearImmediate(this.submitTimer);
    this.submitTimer = null;
  }

  // ---------------------------------------------------------------- proposals

  /**
   * Submits the offered proposals on the next macrotask at the latest: an idle loop submits them
   * sooner, before its next turn, and a busy one would only after its durable write, so the
   * proposals of a burst reach the core meanwhile and go into its next batch together.
   */
  private submitSoon(): void {
    this.submitTimer ??= setImmediate(() => {
      this.submitTimer = null;
      this.submitProposals();
      this.loop?.schedule();
    });
  }

  /**
   * Hands every offered proposal to the core, packed into envelopes. A refusal goes back to the
   * tracker, which offers those proposals again on a later tick (no leader, a full uncommitted
   * tail, a transfer under way) or rejects them.
   */
  private submitProposals(): void {
    if (this.failure !== null || this.closed || !this.proposals.hasOffers) return;
    for (const batch of packProposals(this.proposals.takeOffers(), () => this.nextProposalId())) {
      try {
        this.node.proposeMany([batch.proposal]);
      } catch (error) {
        this.proposals.onSubmitFailed(batch.ids, error);
      }
    }
  }

  private closeTransport(): Promise<void> {
    if (this.transport === null) return Promise.resolve();
    this.transportClosed ??= this.transport.close();
    return this.transportClosed;
  }

  // ---------------------------------------------------------------- inputs

  private onMessage(message: Message): void {
    this.guard(() => this.node.step(message));
  }

  private onTick(): void {
    if (!this.guard(() => this.node.tick())) return;
    this.ticks++;
    const { leader, term } = this.node.status();
    const changed = leader !== this.observedLeader || term !== this.observedTerm;
    this.observedLeader = leader;
    this.observedTerm = term;
    if (leader !== null) {
      this.lastLeader = leader;
      this.lastTerm = term;
    }
    this.proposals.onTick(this.ticks, leader !== null, changed);
    if (this.proposals.hasOffers) this.submitSoon();
    this.reads.onTick(this.ticks, leader !== null, changed);
    this.afterInput();
  }

  /** After any input to the core: report a new configuration, re-check waits, wake the loop. */
  private afterInput(): void {
    const config = this.node.configuration();
    if (config !== this.reportedConfiguration) {
      this.reportedConfiguration = config;
      this.options.onConfiguration?.(config);
    }
    this.conditions.poll();
    this.loop?.schedule();
  }

  /** Runs an input on the core, then wakes the loop; a core that throws has a broken state, which is fatal. */
  private guard(input: () => void): boolean {
    if (this.failure !== null || this.closed) return false;
    try {
      input();
    } catch (error) {
      this.fail(error);
      return false;
    }
    this.afterInput();
    return true;
  }
}
