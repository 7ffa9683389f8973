import { randomInt } from 'node:crypto';
import { ConfigError, requirePositiveInteger } from '@timebox/core';
import type { RaftNodeConfig } from '../consensus/config.js';
import { SeededRandom, type RandomSource } from '../consensus/random.js';
import type { Configuration } from '../consensus/membership.js';
import type { NodeId } from '../consensus/types.js';
import type { DurableLog, StateMachine, Transport, TransportEvents } from './ports.js';

/** Consensus settings passed through to the core unchanged (see `RaftNodeConfig`). */
export type ConsensusTuning = Partial<
  Pick<
    RaftNodeConfig,
    'preVote' | 'checkQuorum' | 'maxMessageBytes' | 'maxInflightMessages' | 'maxInflightBytes' | 'maxUncommittedBytes' | 'maxApplyBytes'
  >
>;

/** How to assemble a {@link RaftServer}. */
export interface RaftServerOptions<Result> {
  /** This node's stable ID (the member's `localId`). */
  readonly id: NodeId;
  /**
   * The voters a new cluster starts with; must include `id`. One voter is a single-node cluster.
   * Once the log holds a configuration (membership changes, snapshots), that one is in force.
   */
  readonly voters: readonly NodeId[];
  /**
   * This node joins an existing cluster: it starts with no configuration (so it never campaigns)
   * and learns it from the leader once added as a learner. `voters` is then ignored. Default false.
   */
  readonly join?: boolean;
  /** Called with the configuration in force whenever it changes (and once at start). */
  readonly onConfiguration?: (config: Configuration) => void;
  /** The durable log; the server owns it from `start()` on and closes it in `close()`. */
  readonly log: DurableLog;
  /** The replicated state. Its owner opens and closes it; the server only reads and applies. */
  readonly state: StateMachine<Result>;
  /** Opens the transport, handing it the callbacks it reports to; closed by the server. */
  readonly connect: (events: TransportEvents) => Transport;
  /** Milliseconds per consensus tick. Default 100. */
  readonly tickMs?: number;
  /** Election timeout in ticks (randomized between this and twice it). Default 10. */
  readonly electionTicks?: number;
  /** Leader heartbeat interval in ticks; below `electionTicks`. Default 1. */
  readonly heartbeatTicks?: number;
  /**
   * How long a proposal may wait for a leader to commit it before it rejects with
   * `RaftUnavailableError`. Default 10000.
   */
  readonly proposalTimeoutMs?: number;
  /**
   * The fewest commands applied between two local snapshots (each followed by a log compaction); a
   * snapshot also waits until the commands applied since the last one add up to that image's size.
   * Default 16384.
   */
  readonly snapshotEvery?: number;
  /** Entries kept in the log behind a local snapshot, so slow followers catch up without one. Default 4096. */
  readonly compactionMargin?: number;
  /** Seed for election timeouts (ignored when `random` is given). Default: a random seed. */
  readonly seed?: number;
  /** The randomness for election timeouts; `SeededRandom(seed)` by default. */
  readonly random?: RandomSource;
  /** Further consensus settings, passed to the core. */
  readonly consensus?: ConsensusTuning;
}

/** Options with every default filled in. */
export interface ResolvedRaftServerOptions<Result> {
  readonly id: NodeId;
  readonly voters: readonly NodeId[];
  readonly join: boolean;
  readonly onConfiguration: ((config: Configuration) => void) | undefined;
  readonly log: DurableLog;
  readonly state: StateMachine<Result>;
  readonly connect: (events: TransportEvents) => Transport;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly proposalTimeoutMs: number;
  readonly snapshotEvery: number;
  readonly compactionMargin: number;
  readonly random: RandomSource;
  readonly consensus: ConsensusTuning;
}

/** Defaults of the {@link RaftServerOptions} numbers. */
export const RAFT_SERVER_DEFAULTS = Object.freeze({
  tickMs: 100,
  electionTicks: 10,
  heartbeatTicks: 1,
  proposalTimeoutMs: 10_000,
  snapshotEvery: 16_384,
  compactionMargin: 4_096,
});

/**
 * Validates server options, throwing `ConfigError` naming the first bad field. The voter set and
 * consensus tuning are validated again (and in full) by the core when the node is built.
 */
export function resolveRaftServerOptions<Result>(options: RaftServerOptions<Result>): ResolvedRaftServerOptions<Result> {
  if (typeof options !== 'object' || options === null) throw new ConfigError('options', 'must be an object', options);
  if (typeof options.id !== 'string' || options.id === '') throw new ConfigError('id', 'must be a non-empty string', options.id);
  // Checked through an `unknown` copy: Array.isArray on `options.voters` itself would widen it to any[].
  const voters: unknown = options.voters;
  if (!Array.isArray(voters) || voters.length === 0)
    throw new ConfigError('voters', 'must be a non-empty array of node IDs', options.voters);
  if (!options.voters.includes(options.id))
    throw new ConfigError('voters', `must include the local node ${JSON.stringify(options.id)}`, options.voters);
  requireMethods('log', options.log, ['save', 'createSnapshot', 'compact', 'close', 'hardState', 'initialState', 'snapshot']);
  requireMethods('state', options.state, ['appliedIndex', 'apply', 'exportImage', 'restoreSnapshot']);
  if (typeof options.connect !== 'function') throw new ConfigError('connect', 'must be a function (events) => Transport', options.connect);
  const tickMs = options.tickMs ?? RAFT_SERVER_DEFAULTS.tickMs;
  const electionTicks = options.electionTicks ?? RAFT_SERVER_DEFAULTS.electionTicks;
  const heartbeatTicks = options.heartbeatTicks ?? RAFT_SERVER_DEFAULTS.heartbeatTicks;
  const proposalTimeoutMs = options.proposalTimeoutMs ?? RAFT_SERVER_DEFAULTS.proposalTimeoutMs;
  const snapshotEvery = options.snapshotEvery ?? RAFT_SERVER_DEFAULTS.snapshotEvery;
  const compactionMargin = options.compactionMargin ?? RAFT_SERVER_DEFAULTS.compactionMargin;
  requirePositiveInteger('tickMs', tickMs);
  requirePositiveInteger('electionTicks', electionTicks);
  requirePositiveInteger('heartbeatTicks', heartbeatTicks);
  if (heartbeatTicks >= electionTicks)
    throw new ConfigError('heartbeatTicks', `must be below electionTicks (${electionTicks})`, heartbeatTicks);
  requirePositiveInteger('proposalTimeoutMs', proposalTimeoutMs);
  requirePositiveInteger('snapshotEvery', snapshotEvery);
  if (!Number.isSafeInteger(compactionMargin) || compactionMargin < 0)
    throw new ConfigError('compactionMargin', 'must be an integer ≥ 0', compactionMargin);
  if (options.seed !== undefined && (!Number.isSafeInteger(options.seed) || options.seed < 0)) {
    throw new ConfigError('seed', 'must be an integer ≥ 0', options.seed);
  }
  if (options.random !== undefined && typeof options.random?.nextInt !== 'function') {
    throw new ConfigError('random', 'must have a nextInt(bound) method', options.random);
  }
  if (options.join !== undefined && typeof options.join !== 'boolean') throw new ConfigError('join', 'must be a boolean', options.join);
  if (options.onConfiguration !== undefined && typeof options.onConfiguration !== 'function')
    throw new ConfigError('onConfiguration', 'must be a function', options.onConfiguration);
  if (options.consensus !== undefined && (typeof options.consensus !== 'object' || options.consensus === null)) {
    throw new ConfigError('consensus', 'must be an object', options.consensus);
  }
  return {
    id: options.id,
    voters: [...options.voters],
    join: options.join === true,
    onConfiguration: options.onConfiguration,
    log: options.log,
    state: options.state,
    connect: options.connect,
    tickMs,
    electionTicks,
    heartbeatTicks,
    proposalTimeoutMs,
    snapshotEvery,
    compactionMargin,
    random: options.random ?? new SeededRandom(options.seed ?? randomInt(0x1_0000_0000)),
    consensus: { ...options.consensus },
  };
}

function requireMethods(field: string, value: unknown, methods: readonly string[]): void {
  if (typeof value !== 'object' || value === null) throw new ConfigError(field, 'must be an object', value);
  for (const method of methods) {
    if (typeof (value as Record<string, unknown>)[method] !== 'function')
      throw new ConfigError(field, `must have a ${method}() method`, value);
  }
}
