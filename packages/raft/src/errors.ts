import { InvalidArgumentError, TimeboxError } from '@timebox/core';
import { formatBytes } from './entry-limits.js';

// The errors a caller of this package can meet, in one place. The two below are the backend's
// own; the others are thrown deep inside a member (its node, log or state) and re-exported here.
export { RaftNodeFailedError, RaftUnavailableError, type RaftUnavailableReason } from './node/errors.js';
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

/**
 * A write whose log entry (the encoded command: the events with their index, a snapshot, a
 * projection's state) is larger than `maxEntryBytes`, refused before it is proposed so that it can
 * never stall replication. The store is unchanged. A subclass of core's `InvalidArgumentError`
 * (code `INVALID_ARGUMENT`): code that handles bad input already handles it. `bytes` is the size
 * of the entry (or a lower bound of it), `limit` the member's `maxEntryBytes`.
 */
export class RaftEntryTooLargeError extends InvalidArgumentError {
  constructor(
    what: string,
    /** The entry's size, or a lower bound of it when `atLeast` (it was not encoded: the bound was enough). */
    readonly bytes: number,
    readonly limit: number,
    atLeast = false,
  ) {
    super(
      what,
      `its raft log entry would take ${atLeast ? 'at least ' : ''}${bytes} bytes, over this member's maxEntryBytes of ${limit} (${formatBytes(limit)}); ` +
        'store less in one write, or raise maxEntryBytes on every member',
      bytes,
    );
  }
}
