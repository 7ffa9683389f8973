import { TimeboxError } from '@timebox/core';

/**
 * The write-ahead log found damage it must not repair: a bad frame followed by valid data, or a
 * bad frame in a segment that is not the last one, or a snapshot file that fails its checksum.
 * Recovery refuses to open and leaves every file as it found it, so an operator can inspect it.
 */
export class WalCorruptionError extends TimeboxError {
  constructor(
    /** The damaged file's path. */
    readonly file: string,
    /** Byte offset in `file` where the damage was found. */
    readonly offset: number,
    /** What was wrong ("checksum mismatch", "length beyond end", …). */
    readonly reason: string,
  ) {
    super('RAFT_WAL_CORRUPT', `write-ahead log corrupt: ${file} at byte offset ${offset}: ${reason}`);
  }
}

/** The log was closed, or an earlier write or sync failed so nothing after it can be trusted. */
export class WalUnavailableError extends TimeboxError {
  constructor(operation: string, reason: string, options?: ErrorOptions) {
    super('RAFT_WAL_UNAVAILABLE', `cannot ${operation}: the write-ahead log ${reason}`, options);
  }
}

/** A record whose bytes passed their checksum but do not decode: a format or writer bug. */
export class MalformedRecordError extends Error {}

/** How the WAL's byte readers report what does not decode. */
export const malformedRecord = (problem: string): MalformedRecordError => new MalformedRecordError(problem);
