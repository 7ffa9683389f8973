import { ConfigError, requirePositiveInteger } from '@timebox/core';
import type { NodeId } from './consensus/types.js';
import type { ConsensusTuning } from './node/options.js';
import type { PublishedEvent } from './state/materialized-state.js';
import { parseAddress } from './transport/address.js';
import { DEFAULT_MAX_ENTRY_BYTES, resolveMaxEntryBytes, resolveMaxMessageBytes } from './entry-limits.js';
import type { LinkFaults } from './transport/faults.js';
import { loadTlsCredentials, type RaftTlsOptions, type TlsCredentials } from './transport/tls-credentials.js';

/**
 * How reads are served (they always come from this member's local state; this says how fresh it must be).
 *
 * - `'linearizable'` (default): each read first waits until this node has applied everything
 *   committed cluster-wide when the read began (a ReadIndex barrier through the leader, shared by
 *   concurrent reads), so it sees every write acknowledged before it, on any node. Costs a round
 *   trip to the leader per read (or per batch of concurrent reads); rejects with
 *   `RaftUnavailableError` when no leader answers within the proposal timeout.
 * - `'local'`: reads the local state at once. Never waits and works without a leader, but a
 *   follower may not yet show a write another node already acknowledged (its own acknowledged
 *   writes it always shows: a write resolves only once applied locally).
 */
export type RaftReadMode = 'linearizable' | 'local';

/** Options of the backends a member opens (`member.backend()`, `openRaftStore`). */
export interface RaftMemberBackendOptions {
  /**
   * How long (ms) an archive record stays with a consumer that stopped renewing before another
   * may take it. Default 30000.
   */
  readonly archiveLeaseMs?: number;
  /** `'linearizable'` (default: each read waits for a ReadIndex barrier) or `'local'`; see `RaftReadMode`. */
  readonly reads?: RaftReadMode;
}

/** The smallest `logTailSize` a member accepts. */
export const MIN_LOG_TAIL_SIZE = 2048;

/** One voter of the cluster. */
export interface RaftServerAddress {
  /** The member's stable ID (its `localId`). */
  readonly id: NodeId;
  /** Where it listens for Raft traffic, `"host:port"`. */
  readonly address: string;
}

/**
 * How one process joins a Raft cluster. The required fields are `localId`, `address`
 * and `dataDir`; the rest have defaults.
 */
export interface RaftMemberOptions {
  /** This member's stable ID: the same across restarts, unique in the cluster. */
  readonly localId: NodeId;
  /** Where this member listens for Raft traffic, `"host:port"` (IPv6 as `"[::1]:port"`). */
  readonly address: string;
  /** Folder for this member's durable state: `wal/` (log, term and vote, snapshots) and `state/` (LMDB). */
  readonly dataDir: string;
  /** Newest log entries kept in memory, at most 64 MiB of them (older ones are read from the WAL files). Default 20480, at least 2048. */
  readonly logTailSize?: number;
  /**
   * The voters, this member included, the same list on every member. Omitted: a single-member
   * cluster of this process alone.
   */
  readonly servers?: readonly RaftServerAddress[];
  /**
   * Called on this member with the events of each successful append (one call per append, in
   * commit order) after they are durably applied here, whichever member wrote them.
   */
  readonly publisher?: (events: PublishedEvent[]) => void;
  /** Names the cluster; members refuse connections from another cluster. Default `"timebox"`. */
  readonly clusterId?: string;
  /**
   * Mutual TLS between members: this member's key and certificate and the cluster CA, each a PEM
   * file path, PEM text or a Buffer of PEM (files are read when the member opens). Set it on every
   * member or on none. Default: plain TCP, and then the Raft port must be reachable by members
   * only (anyone who reaches it can act as a member); see "Security" in the README.
   */
  readonly tls?: RaftTlsOptions;
  /** Milliseconds per consensus tick. Default 50. */
  readonly tickMs?: number;
  /** Election timeout in ticks (randomized between it and twice it), at least 2. Default 10. */
  readonly electionTicks?: number;
  /** How long a write waits for a leader to commit it before `RaftUnavailableError`. Default 10000. */
  readonly proposalTimeoutMs?: number;
  /**
   * The fewest commands applied between local snapshots (each followed by a log compaction); a
   * snapshot also waits until the commands applied since the last one add up to that image's size.
   * Default 16384.
   */
  readonly snapshotEvery?: number;
  /** Entries kept behind a snapshot for slow followers. Default 4096. */
  readonly compactionMargin?: number;
  /** WAL segment size in bytes. Default 64 MiB. */
  readonly segmentBytes?: number;
  /** Further consensus settings (PreVote, CheckQuorum, message and in-flight limits). */
  readonly consensus?: ConsensusTuning;
  /**
   * The largest log entry, in bytes, this member proposes: one write's encoded command (its events
   * with their index, a snapshot, a projection checkpoint). A larger write is refused with
   * `RaftEntryTooLargeError` before it is proposed, and the transport's frame limit is derived so
   * every entry up to it reaches the followers. Set the same value on every member. From 64 KiB
   * to 256 MiB; default 8 MiB.
   */
  readonly maxEntryBytes?: number;
  /** Fault injection for tests: drops, delays or black-holes what this member sends. */
  readonly faults?: LinkFaults;
}

/** The options with defaults filled in. */
export interface ResolvedMemberOptions {
  readonly localId: NodeId;
  readonly address: string;
  readonly dataDir: string;
  readonly logTailSize: number;
  readonly servers: readonly RaftServerAddress[];
  readonly publisher: ((events: PublishedEvent[]) => void) | undefined;
  readonly clusterId: string;
  readonly tls: TlsCredentials | undefined;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly proposalTimeoutMs: number;
  readonly snapshotEvery: number;
  readonly compactionMargin: number;
  readonly segmentBytes: number | undefined;
  readonly consensus: ConsensusTuning;
  readonly faults: LinkFaults | undefined;
  readonly maxEntryBytes: number;
}

export const MEMBER_DEFAULTS = Object.freeze({
  logTailSize: 20_480,
  clusterId: 'timebox',
  tickMs: 50,
  electionTicks: 10,
  proposalTimeoutMs: 10_000,
  snapshotEvery: 16_384,
  compactionMargin: 4_096,
  maxEntryBytes: DEFAULT_MAX_ENTRY_BYTES,
});

/** Validates member options, throwing `ConfigError` naming the first bad field. */
export function resolveOptions(options: RaftMemberOptions): ResolvedMemberOptions {
  if (options === null || typeof options !== 'object') throw new ConfigError('options', 'must be an object', options);
  const { localId, address, dataDir } = options;
  if (typeof localId !== 'string' || localId === '')
    throw new ConfigError('localId', 'must be a non-empty string (the member ID)', localId);
  if (typeof address !== 'string') throw new ConfigError('address', 'must be "host:port"', address);
  parseAddress(address, 'address');
  if (typeof dataDir !== 'string' || dataDir === '') throw new ConfigError('dataDir', 'must be a non-empty path', dataDir);
  const logTailSize = options.logTailSize ?? MEMBER_DEFAULTS.logTailSize;
  if (typeof logTailSize !== 'number' || !Number.isSafeInteger(logTailSize) || logTailSize < MIN_LOG_TAIL_SIZE) {
    throw new ConfigError('logTailSize', `must be an integer ≥ ${MIN_LOG_TAIL_SIZE}`, logTailSize);
  }
  const servers = options.servers ?? [{ id: localId, address }];
  // Checked through an `unknown` copy: Array.isArray on `servers` itself would widen it to any[].
  const serverList: unknown = servers;
  if (!Array.isArray(serverList) || serverList.length === 0)
    throw new ConfigError('servers', 'must be a non-empty array of { id, address }', servers);
  const seen = new Set<string>();
  for (const [i, server] of (serverList as unknown[]).entries()) {
    const { id, address: at } = (server ?? {}) as { id?: unknown; address?: unknown };
    if (typeof id !== 'string' || id === '') throw new ConfigError(`servers[${i}].id`, 'must be a non-empty string', id);
    if (seen.has(id)) throw new ConfigError(`servers[${i}].id`, 'must be unique', id);
    seen.add(id);
    if (typeof at !== 'string') throw new ConfigError(`servers[${i}].address`, 'must be "host:port"', at);
    parseAddress(at, `servers[${i}].address`);
  }
  const self = servers.find((server) => server.id === localId);
  if (self === undefined)
    throw new ConfigError(
      'servers',
      `must include the local member ${JSON.stringify(localId)}`,
      servers.map((s) => s.id),
    );
  if (self.address !== address) {
    throw new ConfigError(
      'servers',
      `gives ${JSON.stringify(localId)} the address ${JSON.stringify(self.address)}, not its own address ${JSON.stringify(address)}`,
      self.address,
    );
  }
  if (options.publisher !== undefined && typeof options.publisher !== 'function')
    throw new ConfigError('publisher', 'must be a function', options.publisher);
  const clusterId = options.clusterId ?? MEMBER_DEFAULTS.clusterId;
  if (typeof clusterId !== 'string' || clusterId === '') throw new ConfigError('clusterId', 'must be a non-empty string', clusterId);
  const tls = loadTlsCredentials(options.tls, localId);
  const numbers = {
    tickMs: options.tickMs ?? MEMBER_DEFAULTS.tickMs,
    electionTicks: options.electionTicks ?? MEMBER_DEFAULTS.electionTicks,
    proposalTimeoutMs: options.proposalTimeoutMs ?? MEMBER_DEFAULTS.proposalTimeoutMs,
    snapshotEvery: options.snapshotEvery ?? MEMBER_DEFAULTS.snapshotEvery,
    compactionMargin: options.compactionMargin ?? MEMBER_DEFAULTS.compactionMargin,
  };
  for (const [field, value] of Object.entries(numbers)) requirePositiveInteger(field, value);
  // Heartbeats go every tick, and must come more often than an election timeout.
  if (numbers.electionTicks < 2)
    throw new ConfigError('electionTicks', 'must be an integer ≥ 2 (heartbeats go every tick)', numbers.electionTicks);
  if (options.segmentBytes !== undefined) requirePositiveInteger('segmentBytes', options.segmentBytes);
  const maxEntryBytes = resolveMaxEntryBytes(options.maxEntryBytes);
  // The transport's frame limit is derived from it: checked here so a bad value names its field.
  if (options.consensus !== undefined && options.consensus !== null && typeof options.consensus === 'object') {
    resolveMaxMessageBytes(options.consensus.maxMessageBytes);
  }
  return {
    localId,
    address,
    dataDir,
    logTailSize,
    servers: servers.map((server) => ({ id: server.id, address: server.address })),
    publisher: options.publisher,
    clusterId,
    tls,
    ...numbers,
    segmentBytes: options.segmentBytes,
    consensus: options.consensus ?? {},
    faults: options.faults,
    maxEntryBytes,
  };
}
