/**
 * LMDB cannot store a key longer than `MAX_KEY_BYTES`, and some keys hold caller data: the encoded
 * aggregate ID, a status, a label name and value, a projection name. A command that would need
 * such a key is refused whole, deterministically, by the apply step (an "invalid command" result)
 * and, with a typed error, by the backend before it proposes anything. Reads look keys up by the
 * same data: the backend refuses one whose key could not be stored (LMDB would throw a plain
 * Error for the longest of them, and none of them can match anything stored).
 */
import { encodeAggregateId, type AggregateId } from '@timebox/core';
import { MAX_KEY_BYTES } from './keys.js';
import type { Command } from './commands.js';

/** A storage limit a command breaks: the field, and the rule in words. */
export interface LimitProblem {
  readonly field: string;
  readonly rule: string;
  readonly value: unknown;
}

/** Bytes a string takes inside a tuple key: UTF-8, NULs doubled, a 2-byte terminator. */
function tupleBytes(text: string): number {
  let nuls = 0;
  for (let at = text.indexOf('\0'); at !== -1; at = text.indexOf('\0', at + 1)) nuls++;
  return Buffer.byteLength(text, 'utf8') + nuls + 2;
}

/** The longest encoded aggregate ID (UTF-8 bytes of `encodeAggregateId`) the state can key. */
export const MAX_AGGREGATE_ID_BYTES = MAX_KEY_BYTES - 1;

/** An aggregate ID too long to key (also used for reads by ID). */
export function aggregateIdProblem(id: AggregateId): LimitProblem | undefined {
  // Buffer.byteLength counts a lone surrogate as the 3 bytes of U+FFFD, as the key writer stores it.
  const bytes = Buffer.byteLength(encodeAggregateId(id), 'utf8');
  if (bytes <= MAX_AGGREGATE_ID_BYTES) return undefined;
  return {
    field: 'aggregate ID',
    rule: `must encode to at most ${MAX_AGGREGATE_ID_BYTES} bytes on the raft backend (this one takes ${bytes})`,
    value: id,
  };
}

/** Key: tag, status, time (8), aggregate number (8). A status query keys by the first two. */
export function statusProblem(status: string): LimitProblem | undefined {
  const bytes = 1 + tupleBytes(status) + 16;
  if (bytes <= MAX_KEY_BYTES) return undefined;
  return {
    field: 'index status',
    rule: `is too long for the raft backend's status index (${bytes} key bytes, limit ${MAX_KEY_BYTES})`,
    value: status,
  };
}

/** Key: tag, name, value, aggregate number (8). A label query keys by the first three. */
export function labelProblem(name: string, value: string): LimitProblem | undefined {
  const bytes = 1 + tupleBytes(name) + tupleBytes(value) + 8;
  if (bytes <= MAX_KEY_BYTES) return undefined;
  return {
    field: `index label ${JSON.stringify(name.slice(0, 40))}`,
    rule: `name and value are too long for the raft backend's label index (${bytes} key bytes, limit ${MAX_KEY_BYTES})`,
    value,
  };
}

/** The longest projection name (UTF-8 bytes) the state can key. */
export const MAX_PROJECTION_NAME_BYTES = MAX_KEY_BYTES - 1;

/** A label name too long for any label key, even with an empty value (`listLabelValues` keys by it). */
export function labelNameProblem(name: string): LimitProblem | undefined {
  const bytes = 1 + tupleBytes(name) + tupleBytes('') + 8;
  if (bytes <= MAX_KEY_BYTES) return undefined;
  return {
    field: 'label name',
    rule: `is too long for the raft backend's label index (${bytes} key bytes with an empty value, limit ${MAX_KEY_BYTES})`,
    value: name,
  };
}

/**
 * A `listAggregates` prefix whose encoding is longer than any aggregate ID the state can key: its
 * range start would be an oversized key.
 */
export function prefixProblem(prefix: AggregateId): LimitProblem | undefined {
  if (prefix.length === 0) return undefined;
  const bytes = Buffer.byteLength(encodeAggregateId(prefix), 'utf8');
  if (bytes <= MAX_AGGREGATE_ID_BYTES) return undefined;
  return {
    field: 'aggregate ID prefix',
    rule: `must encode to at most ${MAX_AGGREGATE_ID_BYTES} bytes on the raft backend, as IDs do (this one takes ${bytes})`,
    value: prefix,
  };
}

/** A projection name too long to key (also used for reads by name). */
export function projectionNameProblem(name: string): LimitProblem | undefined {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes <= MAX_PROJECTION_NAME_BYTES) return undefined;
  return {
    field: 'projection name',
    rule: `must take at most ${MAX_PROJECTION_NAME_BYTES} UTF-8 bytes on the raft backend (this one takes ${bytes})`,
    value: name,
  };
}

/** The storage limit applying `command` would break, or undefined. */
export function commandLimitProblem(command: Command): LimitProblem | undefined {
  switch (command.type) {
    case 'append': {
      const problem = aggregateIdProblem(command.id);
      if (problem !== undefined || command.index === undefined) return problem;
      if (command.index.status !== undefined) {
        const statusIssue = statusProblem(command.index.status);
        if (statusIssue !== undefined) return statusIssue;
      }
      for (const [name, value] of Object.entries(command.index.labels)) {
        const labelIssue = labelProblem(name, value);
        if (labelIssue !== undefined) return labelIssue;
      }
      return undefined;
    }
    case 'save-snapshot':
    case 'archive':
      return aggregateIdProblem(command.id);
    case 'claim-projection':
    case 'save-projection':
    case 'release-projection':
    case 'reset-projection':
      return projectionNameProblem(command.name);
    default:
      return undefined;
  }
}
