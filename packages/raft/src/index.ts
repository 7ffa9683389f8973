export { RaftNode, type ProposeOutcome } from './consensus/raft.js';
export { RAFT_DEFAULTS, resolveRaftConfig, type RaftNodeConfig, type ResolvedRaftConfig } from './consensus/config.js';
export { MemoryLogStorage, entryBytes, type InitialState, type LogStorage } from './consensus/storage.js';
export { SeededRandom, type RandomSource } from './consensus/random.js';
export type { ProgressState } from './consensus/progress.js';
export {
  InvalidProposalError,
  LogCompactedError,
  LogUnavailableError,
  NoLeaderError,
  ProposalDroppedError,
  RaftProtocolError,
} from './consensus/errors.js';
export type * from './consensus/types.js';
// node
export { RaftServer, type RaftServerLifecycle, type RaftServerStatus } from './node/raft-server.js';
export { RAFT_SERVER_DEFAULTS, type ConsensusTuning, type RaftServerOptions } from './node/options.js';
export { ProposalResultMissingError, RaftNodeFailedError, RaftUnavailableError } from './node/errors.js';
export type { CommittedEntry, DurableLog, DurableWrite, Replicator, StateMachine, Transport, TransportEvents } from './node/ports.js';
// wal
export { WriteAheadLog, WAL_DEFAULTS, WalCorruptionError, WalUnavailableError, type WalOptions, type WalStats } from './wal/index.js';
// transport
export { TcpTransport } from './transport/tcp-transport.js';
export { TRANSPORT_DEFAULTS, type TcpTransportOptions } from './transport/options.js';
export { parseAddress, formatAddress, type HostPort } from './transport/address.js';
export { LinkFaults, type LinkFaultsOptions, type LinkVerdict } from './transport/faults.js';
export { CodecError, HandshakeError, TransportError } from './transport/errors.js';
export { PROTOCOL_VERSION } from './transport/frames.js';
// state and backend
export { MaterializedState, type MaterializedStateOptions, type PublishedEvent } from './state/materialized-state.js';
export { StateLayoutError } from './state/errors.js';
export {
  decodeCommand,
  encodeCommand,
  type AckCommand,
  type AppendCommand,
  type ArchiveCommand,
  type ClaimProjectionCommand,
  type Command,
  type CommandResult,
  type LeaseCommand,
  type LeaseHandle,
  type OpenLogCommand,
  type ReleaseCommand,
  type ReleaseProjectionCommand,
  type RenewCommand,
  type ResetProjectionCommand,
  type SaveProjectionCommand,
  type SaveSnapshotCommand,
} from './state/commands.js';
export { DecodeError } from './state/binary.js';
export { MAX_AGGREGATE_ID_BYTES, MAX_PROJECTION_NAME_BYTES } from './state/limits.js';
export { RaftProjections } from './backend/raft-projections.js';
export {
  RaftBackend,
  RaftCommandRejectedError,
  RaftLogUnnamedError,
  type RaftBackendOptions,
  type RaftReadMode,
  type ReadBarrierReplicator,
} from './backend/raft-backend.js';
export { LocalReplicator } from './backend/local-replicator.js';
// member: one process of a cluster, assembled
export { RaftMember, openRaftStore, type RaftMemberBackendOptions } from './member/raft-member.js';
export {
  LocalRaftCluster,
  startLocalCluster,
  freeLoopbackPort,
  type LocalClusterOptions,
  type LocalMemberSettings,
} from './member/local-cluster.js';
export { MEMBER_DEFAULTS, MIN_LOG_TAIL_SIZE, type RaftMemberOptions, type RaftServerAddress } from './member/options.js';
