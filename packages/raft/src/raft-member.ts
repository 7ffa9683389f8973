import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createStore, type Config, type EventMap, type Store } from '@timebox/core';
import type { NodeId } from './consensus/types.js';
import { RaftBackend } from './raft-backend.js';
import { RaftServer, type RaftServerStatus } from './node/raft-server.js';
import type { CommandResult } from './state/commands.js';
import { MaterializedState } from './state/materialized-state.js';
import { TcpTransport } from './transport/tcp-transport.js';
import { WriteAheadLog } from './wal/index.js';
import { transportLimitsFor } from './entry-limits.js';
import { RAFT_DEFAULTS } from './consensus/config.js';
import { resolveOptions, type RaftMemberBackendOptions, type RaftMemberOptions, type ResolvedMemberOptions } from './options.js';

/**
 * This process as a member of a Raft cluster: its write-ahead log and LMDB state in
 * `dataDir`, its TCP transport on `address`, and the node driver joining them. Stores open over it
 * with `member.backend()` (several stores may share one member); writes on any member are
 * forwarded to the leader and resolve once committed and applied here, reads come from this
 * member's state.
 *
 * ```ts
 * const member = await RaftMember.open({ localId: 'a', address: '10.0.0.1:7400', dataDir: '/var/lib/app/raft',
 *   servers: [{ id: 'a', address: '10.0.0.1:7400' }, { id: 'b', address: '10.0.0.2:7400' }, { id: 'c', address: '10.0.0.3:7400' }] });
 * const store = createStore(member.backend(), config);
 * await store.ready();
 * ```
 */
export class RaftMember {
  /** @internal The options after defaults, for this package's tests and tools. */
  readonly options: ResolvedMemberOptions;
  /** @internal The replicated state in LMDB, for this package's tests and tools. */
  readonly state: MaterializedState;
  /** @internal The Raft server driving consensus, for this package's tests and tools. */
  readonly server: RaftServer<CommandResult>;
  readonly #transport: { current: TcpTransport | undefined };
  #closing: Promise<void> | undefined;

  private constructor(
    options: ResolvedMemberOptions,
    state: MaterializedState,
    server: RaftServer<CommandResult>,
    transport: { current: TcpTransport | undefined },
  ) {
    this.options = options;
    this.state = state;
    this.server = server;
    this.#transport = transport;
  }

  /** Validates `options` (`ConfigError` naming the field), recovers the data folder and starts the member. */
  static async open(options: RaftMemberOptions): Promise<RaftMember> {
    return RaftMember.start(options, false);
  }

  /**
   * Starts a **new** member that joins a running cluster (grow it, or replace a member whose disk
   * is gone — under a new `localId`; a lost member never comes back under its old ID). `servers`
   * lists this member and the members it can reach (their addresses); the configuration itself
   * comes from the leader. Until the leader adds it (`addLearner` on the leader) it does nothing
   * but wait: it never campaigns. It catches up from the log, or by a snapshot when it is far
   * behind. Restart it with `join` too: once it holds the configuration, `join` and `open` are
   * the same.
   *
   * ```ts
   * const d = await RaftMember.join({ localId: 'd', address: '10.0.0.4:7400', dataDir, servers: [...current, self] });
   * await leader.addLearner('d', '10.0.0.4:7400'); // on the leader: replicate to d
   * await leader.promote('d');                      // once d caught up: d votes
   * ```
   */
  static async join(options: RaftMemberOptions): Promise<RaftMember> {
    return RaftMember.start(options, true);
  }

  private static async start(options: RaftMemberOptions, joining: boolean): Promise<RaftMember> {
    const resolved = resolveOptions(options);
    await mkdir(resolved.dataDir, { recursive: true });
    const log = await WriteAheadLog.open(join(resolved.dataDir, 'wal'), {
      tailSize: resolved.logTailSize,
      segmentBytes: resolved.segmentBytes,
    });
    let state: MaterializedState | undefined;
    let server: RaftServer<CommandResult> | undefined;
    try {
      await mkdir(join(resolved.dataDir, 'state'), { recursive: true });
      state = MaterializedState.open(join(resolved.dataDir, 'state'), { publisher: resolved.publisher });
      const peers = new Map(resolved.servers.map((server) => [server.id, server.address]));
      const transport: { current: TcpTransport | undefined } = { current: undefined };
      // Every entry this member may propose, and every append message, must fit one frame.
      const limits = transportLimitsFor(resolved.maxEntryBytes, resolved.consensus.maxMessageBytes ?? RAFT_DEFAULTS.maxMessageBytes);
      server = new RaftServer<CommandResult>({
        id: resolved.localId,
        voters: resolved.servers.map((server) => server.id),
        join: joining,
        // Members added through the log bring their address with them: tell the transport.
        onConfiguration: (config) => {
          for (const [id, address] of Object.entries(config.addresses)) {
            if (peers.get(id) === address) continue;
            peers.set(id, address);
            transport.current?.setPeer(id, address);
          }
        },
        log,
        state,
        connect: (events) => {
          transport.current = new TcpTransport({
            localId: resolved.localId,
            listen: resolved.address,
            peers,
            clusterId: resolved.clusterId,
            tls: resolved.tls,
            events,
            faults: resolved.faults,
            maxFrameBytes: limits.maxFrameBytes,
            maxQueueBytes: limits.maxQueueBytes,
          });
          return transport.current;
        },
        tickMs: resolved.tickMs,
        electionTicks: resolved.electionTicks,
        proposalTimeoutMs: resolved.proposalTimeoutMs,
        snapshotEvery: resolved.snapshotEvery,
        compactionMargin: resolved.compactionMargin,
        consensus: resolved.consensus,
      });
      const member = new RaftMember(resolved, state, server, transport);
      await server.start();
      await transport.current?.start();
      return member;
    } catch (error) {
      // A started server ticks and owns the transport and the log: stop it (it closes both) before the state.
      if (server !== undefined) await server.close().catch(() => undefined);
      else await log.close().catch(() => undefined);
      await state?.close().catch(() => undefined);
      throw error;
    }
  }

  /** A new backend over this member; close the member after the stores over it. */
  backend(options: RaftMemberBackendOptions = {}): RaftBackend {
    return new RaftBackend({
      state: this.state,
      replicator: this.server,
      ownsNode: false,
      archiveLeaseMs: options.archiveLeaseMs,
      reads: options.reads,
      maxEntryBytes: this.options.maxEntryBytes,
    });
  }

  /** This member's ID. */
  get id(): NodeId {
    return this.options.localId;
  }

  /** The address the transport listens on. */
  get address(): string {
    return this.#transport.current?.address ?? this.options.address;
  }

  /** Role, term, leader, commit and applied index, for diagnostics and tests. */
  status(): RaftServerStatus {
    return this.server.status();
  }

  /** Resolves once this member knows a leader and has applied what was committed when it joined. */
  ready(): Promise<void> {
    return this.server.ready();
  }

  /** The cluster's configuration as this member knows it (the latest in its log): voters, learners, addresses of added members. */
  members(): RaftMembership {
    const config = this.server.configuration();
    return { voters: [...config.voters], learners: [...config.learners], addresses: { ...config.addresses } };
  }

  /**
   * Adds member `id`, reachable at `address`, as a learner: it receives the log (or a snapshot
   * when far behind) but does not vote, so a slow newcomer never holds up writes. Call on the
   * leader; resolves once the change is committed. Start the new member with `RaftMember.join`.
   * One change at a time: a call made while another change is uncommitted waits for it first.
   * @throws NotLeaderError on a follower (its message names the leader). ConfChangeInProgressError
   * when the change before it did not commit within `proposalTimeoutMs`. InvalidConfChangeError
   * when `id` is already a member. MembershipChangeFailedError when it did not commit.
   */
  addLearner(id: NodeId, address: string): Promise<void> {
    return this.server.changeMembership({ type: 'add-learner', node: id, address });
  }

  /**
   * Promotes learner `id` to voter. Promote once it has caught up (`status().applied` on it close to
   * the leader's commit): from then on it counts toward every quorum. Call on the leader; resolves
   * once committed. Errors as for `addLearner` (InvalidConfChangeError when `id` is not a learner).
   */
  promote(id: NodeId): Promise<void> {
    return this.server.changeMembership({ type: 'promote', node: id });
  }

  /**
   * Removes voter or learner `id` (for good: a removed member never rejoins under the same ID).
   * Call on the leader; resolves once committed. A leader that removes itself keeps leading until
   * the removal commits, then steps down; transfer leadership first to avoid the election. Errors as
   * for `addLearner` (InvalidConfChangeError when `id` is not a member, or is the last voter).
   */
  removeMember(id: NodeId): Promise<void> {
    return this.server.changeMembership({ type: 'remove', node: id });
  }

  /**
   * Hands leadership to voter `to` (default: the most up-to-date other voter) and resolves with
   * the new leader's ID (null when there is no other voter). Writes made meanwhile wait and go to
   * the new leader. Call on the leader.
   * @throws NotLeaderError on a follower. LeadershipTransferFailedError when no one took over
   * within two election timeouts (this member may still lead).
   */
  transferLeadership(to?: NodeId): Promise<NodeId | null> {
    return this.server.transferLeadership(to);
  }

  /**
   * Stops the node (its transport and log), then closes the state. A leader first hands
   * leadership to the most up-to-date other voter, so the cluster does not wait an election
   * timeout for a new leader (a rolling restart never does); pass `{ transferLeadership: false }`
   * to skip that. Idempotent.
   */
  close(options: { readonly transferLeadership?: boolean } = {}): Promise<void> {
    this.#closing ??= (async () => {
      await this.server.close(options);
      await this.state.close();
    })();
    return this.#closing;
  }
}

/** A cluster configuration, as `RaftMember.members()` reports it. */
export interface RaftMembership {
  /** Members that vote and count toward every quorum. */
  readonly voters: readonly NodeId[];
  /** Members that receive the log but do not vote (not yet promoted). */
  readonly learners: readonly NodeId[];
  /** Addresses of the members added through `addLearner`. */
  readonly addresses: Readonly<Record<NodeId, string>>;
}

/**
 * Opens a member and a store over it that owns it: `store.close()` closes the member too.
 * For several stores on one member, use `RaftMember.open` and `member.backend()`.
 */
export async function openRaftStore<M extends EventMap = EventMap>(
  config: Config<M>,
  options: RaftMemberOptions,
  backendOptions: RaftMemberBackendOptions = {},
): Promise<Store<M>> {
  const member = await RaftMember.open(options);
  const replicator = {
    propose: (command: Uint8Array) => member.server.propose(command),
    ready: () => member.ready(),
    readBarrier: () => member.server.readBarrier(),
    // Closes the state too; the backend's own close of the state then finds it closed (idempotent).
    close: () => member.close(),
  };
  try {
    const backend = new RaftBackend({
      state: member.state,
      replicator,
      ownsNode: true,
      archiveLeaseMs: backendOptions.archiveLeaseMs,
      reads: backendOptions.reads,
      maxEntryBytes: member.options.maxEntryBytes,
    });
    return createStore<M>(backend, config);
  } catch (error) {
    await member.close();
    throw error;
  }
}
