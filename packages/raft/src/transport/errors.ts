import { TimeboxError } from '@timebox/core';

/** A frame or message could not be encoded or decoded (garbage, truncation, a value the wire cannot carry). */
export class CodecError extends TimeboxError {
  constructor(problem: string) {
    super('RAFT_CODEC', `raft wire codec: ${problem}`);
  }
}

/** A connection's hello was refused: another cluster, another protocol version, or the wrong node. */
export class HandshakeError extends TimeboxError {
  constructor(readonly problem: string) {
    super('RAFT_HANDSHAKE', `raft transport handshake failed: ${problem}`);
  }
}

/** Any other transport failure reported through `onError` (a peer broke the protocol, a cut snapshot stream). */
export class TransportError extends TimeboxError {
  constructor(problem: string, options?: ErrorOptions) {
    super('RAFT_TRANSPORT', `raft transport: ${problem}`, options);
  }
}

/** How the wire codec's byte readers and writers report what they cannot read or write. */
export const codecError = (problem: string): CodecError => new CodecError(problem);
