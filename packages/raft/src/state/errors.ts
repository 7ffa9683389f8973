import { TimeboxError } from '@timebox/core';
import { LAYOUT_VERSION } from './keys.js';

/**
 * A state folder written by a build that lays out its keys differently: reading it would misread
 * it, so it is refused. The state is a copy of the log: delete the folder (`state/` in the
 * member's data directory) and the member rebuilds it from its log and snapshot — when those were
 * written by the same older build, start the member from an empty data directory instead.
 */
export class StateLayoutError extends TimeboxError {
  constructor(
    readonly dir: string,
    found: string,
  ) {
    super(
      'RAFT_STATE_LAYOUT',
      `the raft state in ${dir} was written with ${found}; this build reads layout version ${LAYOUT_VERSION} only`,
    );
  }
}
