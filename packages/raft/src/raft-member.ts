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

  /** Stops the node (its transport and log), then closes the state. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.server.close();
      await this.state.close();
    })();
    return this.#closing;
  }
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
