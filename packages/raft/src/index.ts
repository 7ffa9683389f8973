/**
 * The embedded multi-node backend for Timebox: the application processes themselves form a Raft
 * cluster, each keeping its own durable log and state, with no outside database.
 *
 * Test helpers (the transport fault injector, a free loopback port) are in `@timebox/raft/testing`.
 *
 * @packageDocumentation
 */
// One process of a cluster and the stores over it.
export { RaftMember, openRaftStore, type RaftMembership } from './raft-member.js';
export {
  MEMBER_DEFAULTS,
  MIN_LOG_TAIL_SIZE,
  type RaftMemberBackendOptions,
  type RaftMemberOptions,
  type RaftReadMode,
  type RaftServerAddress,
} from './options.js';
export type { RaftTlsOptions, RaftTlsPem } from './transport/tls-credentials.js';
export type { ConsensusTuning } from './node/options.js';
export type { RaftServerLifecycle, RaftServerStatus } from './node/raft-server.js';
export type { NodeId, RaftRole } from './consensus/types.js';
export type { PublishedEvent } from './state/materialized-state.js';
// A whole cluster in this process.
export { LocalRaftCluster, startLocalCluster, type LocalClusterOptions, type LocalMemberSettings } from './local-cluster.js';
// The backend and its projection store.
export { RaftBackend } from './raft-backend.js';
export type { RaftProjections } from './projections.js';
export { MAX_AGGREGATE_ID_BYTES, MAX_PROJECTION_NAME_BYTES } from './state/limits.js';
// The errors a caller can meet.
export {
  RaftCommandRejectedError,
  RaftEntryTooLargeError,
  RaftLogUnnamedError,
  RaftNodeFailedError,
  RaftUnavailableError,
  type RaftUnavailableReason,
  StateLayoutError,
  WalCorruptionError,
  WalUnavailableError,
} from './errors.js';
// Membership changes and leadership transfer.
export {
  ConfChangeInProgressError,
  InvalidConfChangeError,
  InvalidTransferError,
  LeadershipTransferInProgressError,
  NotLeaderError,
} from './consensus/errors.js';
export { LeadershipTransferFailedError, MembershipChangeFailedError } from './node/errors.js';
