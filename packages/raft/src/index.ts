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
