import { TimeboxError } from '@timebox/core';

// The errors a caller of this package can meet, in one place. The two below are the backend's
// own; the others are thrown deep inside a member (its node, log or state) and re-exported here.
export { RaftNodeFailedError, RaftUnavailableError } from './node/errors.js';
export { WalCorruptionError, WalUnavailableError } from './wal/errors.js';
export { StateLayoutError } from './state/errors.js';

/**
 * The log has no identity yet: nothing named it since the cluster's data was created. `ready()`
 * names it (as does the first log read), so await `store.ready()` before taking a checkpoint.
 */
export class RaftLogUnnamedError extends TimeboxError {
  constructor() {
    super(
      'RAFT_LOG_UNNAMED',
      "this raft cluster's log has no identity yet: await store.ready() (it names the log) before taking a checkpoint",
    );
  }
}

/** A command the state refused as a whole (undecodable, or beyond a storage limit). */
export class RaftCommandRejectedError extends TimeboxError {
  constructor(reason: string) {
    super('RAFT_COMMAND_REJECTED', `the raft state refused the command: ${reason}`);
  }
}
