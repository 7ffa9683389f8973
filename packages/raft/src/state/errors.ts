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

/** Bytes that are not a well-formed encoding (a command, a stored value, a snapshot image). */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecodeError';
  }
}

/** How the state's byte readers report what does not decode. */
export const decodeError = (problem: string): DecodeError => new DecodeError(problem);
