import { ConfigError, requirePositiveInteger } from '@timebox/core';
import type { RandomSource } from './random.js';
import type { LogStorage } from './storage.js';
import type { NodeId } from './types.js';

/** How to build a {@link RaftNode}. Tick counts are in calls to `tick()`, not milliseconds. */
export interface RaftNodeConfig {
  /** This node's stable ID. */
  readonly id: NodeId;
  /**
   * The voters a new cluster starts with (the member's `servers` option); must include `id`. One
   * voter is a single-node cluster. Empty for a node that joins an existing cluster: it learns the
   * configuration from the leader. Once the log holds a configuration (in a snapshot or a
   * membership-change entry), that one is in force and this is ignored.
   */
  readonly voters: readonly NodeId[];
  /** The durable log; the driver writes to it as each Ready asks. */
  readonly storage: LogStorage;
  /** Randomness for election timeouts; a seeded source makes runs replayable. */
  readonly random: RandomSource;
  /** A follower campaigns after between `electionTicks` and `2 × electionTicks - 1` ticks without a leader. Default 10. */
  readonly electionTicks?: number;
  /** The leader sends heartbeats every `heartbeatTicks` ticks; must be below `electionTicks`. Default 1. */
  readonly heartbeatTicks?: number;
  /** Run a pre-vote round before campaigning, so a partitioned node does not bump the term. Default true. */
  readonly preVote?: boolean;
  /** A leader steps down after an election timeout without hearing from a quorum. Default true. */
  readonly checkQuorum?: boolean;
  /** Largest entry payload per append message (at least one entry is always sent). Default 1 MiB. */
  readonly maxMessageBytes?: number;
  /** Appends in flight to one follower before the leader waits. Default 256. */
  readonly maxInflightMessages?: number;
  /** Entry bytes in flight to one follower before the leader waits; 0 means no byte limit. Default 16 MiB. */
  readonly maxInflightBytes?: number;
  /** The leader refuses proposals while this many bytes are uncommitted. Default 64 MiB. */
  readonly maxUncommittedBytes?: number;
  /** Largest batch of committed entries in one Ready. Default 16 MiB. */
  readonly maxApplyBytes?: number;
  /** The index the state machine had applied when the node restarted (defaults to the snapshot index). */
  readonly applied?: number;
}

/** A config with every default filled in. */
export type ResolvedRaftConfig = Required<Omit<RaftNodeConfig, 'applied'>> & { readonly applied: number | null };

export const RAFT_DEFAULTS = Object.freeze({
  electionTicks: 10,
  heartbeatTicks: 1,
  preVote: true,
  checkQuorum: true,
  maxMessageBytes: 1 << 20,
  maxInflightMessages: 256,
  maxInflightBytes: 16 << 20,
  maxUncommittedBytes: 64 << 20,
  maxApplyBytes: 16 << 20,
});

/** Validates a node config, throwing `ConfigError` naming the first bad field. */
export function resolveRaftConfig(config: RaftNodeConfig): ResolvedRaftConfig {
  if (typeof config.id !== 'string' || config.id === '') throw new ConfigError('id', 'must be a non-empty string', config.id);
  if (!Array.isArray(config.voters)) throw new ConfigError('voters', 'must be an array of node IDs', config.voters);
  for (const voter of config.voters) {
    if (typeof voter !== 'string' || voter === '') throw new ConfigError('voters', 'must hold non-empty strings', voter);
  }
  if (new Set(config.voters).size !== config.voters.length) throw new ConfigError('voters', 'must not repeat an ID', config.voters);
  if (config.voters.length > 0 && !config.voters.includes(config.id))
    throw new ConfigError('voters', `must include the local node ${JSON.stringify(config.id)}`, config.voters);
  const resolved: ResolvedRaftConfig = {
    ...RAFT_DEFAULTS,
    ...definedOnly(config),
    id: config.id,
    voters: config.voters,
    storage: config.storage,
    random: config.random,
    applied: config.applied ?? null,
  };
  for (const field of [
    'electionTicks',
    'heartbeatTicks',
    'maxMessageBytes',
    'maxInflightMessages',
    'maxUncommittedBytes',
    'maxApplyBytes',
  ] as const) {
    requirePositiveInteger(field, resolved[field]);
  }
  if (!Number.isSafeInteger(resolved.maxInflightBytes) || resolved.maxInflightBytes < 0) {
    throw new ConfigError('maxInflightBytes', 'must be an integer ≥ 0', resolved.maxInflightBytes);
  }
  if (resolved.heartbeatTicks >= resolved.electionTicks) {
    throw new ConfigError('heartbeatTicks', `must be below electionTicks (${resolved.electionTicks})`, resolved.heartbeatTicks);
  }
  if (resolved.applied !== null && (!Number.isSafeInteger(resolved.applied) || resolved.applied < 0)) {
    throw new ConfigError('applied', 'must be an integer ≥ 0', resolved.applied);
  }
  if (typeof config.preVote !== 'undefined' && typeof config.preVote !== 'boolean')
    throw new ConfigError('preVote', 'must be a boolean', config.preVote);
  if (typeof config.checkQuorum !== 'undefined' && typeof config.checkQuorum !== 'boolean') {
    throw new ConfigError('checkQuorum', 'must be a boolean', config.checkQuorum);
  }
  if (typeof config.random?.nextInt !== 'function') throw new ConfigError('random', 'must have a nextInt(bound) method', config.random);
  if (typeof config.storage?.initialState !== 'function') throw new ConfigError('storage', 'must implement LogStorage', config.storage);
  return resolved;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Partial<T>;
}
