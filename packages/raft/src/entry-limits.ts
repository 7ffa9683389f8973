/**
 * How large one log entry may be, and the transport limits that follow from it. An entry the
 * leader holds must fit one frame to every follower, or replication stops at it for good and
 * every later write times out. So the limit is enforced before a command is proposed (the
 * backend refuses a larger one with `RaftEntryTooLargeError`), and the transport's frame and
 * queue limits are derived from it rather than set beside it.
 */
import { ConfigError, requirePositiveInteger } from '@timebox/core';
import { RAFT_DEFAULTS } from './consensus/config.js';
import { TRANSPORT_DEFAULTS } from './transport/options.js';

/** Default `maxEntryBytes`: 8 MiB of encoded command per log entry. */
export const DEFAULT_MAX_ENTRY_BYTES = 8 << 20;
/** The smallest `maxEntryBytes` accepted: room for any command that carries no caller data. */
export const MIN_MAX_ENTRY_BYTES = 64 << 10;
/**
 * The largest `maxEntryBytes` accepted. Beyond it an entry stops being practical anyway: it is
 * held in memory whole in the log's tail, in every frame to a follower and in every apply batch.
 */
export const MAX_MAX_ENTRY_BYTES = 256 << 20;

/**
 * Bytes a frame needs beyond the entry data it carries: the message header (type, IDs, term,
 * indexes, commit) and each entry's header (term, index, flags, proposal ID, data length). The
 * entry headers of a message of many small entries are covered by `entryBytes`, which charges
 * every entry more than its encoded header takes; the rest is small and fixed.
 */
const FRAME_HEADROOM_BYTES = 64 << 10;

/** The transport limits a member uses. */
export interface TransportLimits {
  readonly maxFrameBytes: number;
  readonly maxQueueBytes: number;
}

/**
 * Frame and queue limits under which every message the consensus core can build goes through:
 * an append message carries either entries adding up to at most `maxMessageBytes`, or one entry
 * alone however large (a proposal carries one entry, or a batch of at most 256 KiB). The queue
 * holds two of the largest frames, so one can wait behind another without being dropped.
 */
export function transportLimitsFor(maxEntryBytes: number, maxMessageBytes: number): TransportLimits {
  const largestPayload = Math.max(maxEntryBytes, maxMessageBytes);
  const maxFrameBytes = Math.max(TRANSPORT_DEFAULTS.maxFrameBytes, largestPayload + FRAME_HEADROOM_BYTES);
  const maxQueueBytes = Math.max(TRANSPORT_DEFAULTS.maxQueueBytes, 2 * maxFrameBytes);
  return { maxFrameBytes, maxQueueBytes };
}

/** Validates `maxEntryBytes` (default {@link DEFAULT_MAX_ENTRY_BYTES}), throwing `ConfigError`. */
export function resolveMaxEntryBytes(value: unknown): number {
  const bytes = value ?? DEFAULT_MAX_ENTRY_BYTES;
  requirePositiveInteger('maxEntryBytes', bytes);
  if (bytes < MIN_MAX_ENTRY_BYTES || bytes > MAX_MAX_ENTRY_BYTES) {
    throw new ConfigError('maxEntryBytes', `must be an integer from ${MIN_MAX_ENTRY_BYTES} to ${MAX_MAX_ENTRY_BYTES}`, bytes);
  }
  return bytes;
}

/**
 * Validates `consensus.maxMessageBytes` against the same ceiling as entries, so the frame limit
 * derived from it stays within what the transport can carry. Returns the value (or the default).
 */
export function resolveMaxMessageBytes(value: unknown): number {
  const bytes = value ?? RAFT_DEFAULTS.maxMessageBytes;
  requirePositiveInteger('consensus.maxMessageBytes', bytes);
  if (bytes > MAX_MAX_ENTRY_BYTES) {
    throw new ConfigError('consensus.maxMessageBytes', `must be an integer from 1 to ${MAX_MAX_ENTRY_BYTES}`, bytes);
  }
  return bytes;
}

/** `bytes` in words for messages: MiB or KiB when exact, bytes otherwise. */
export function formatBytes(bytes: number): string {
  if (bytes % (1 << 20) === 0) return `${bytes / (1 << 20)} MiB`;
  if (bytes % (1 << 10) === 0) return `${bytes / (1 << 10)} KiB`;
  return `${bytes} bytes`;
}
