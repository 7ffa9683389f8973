import { createHash } from 'node:crypto';
import type { LogDescriptor } from './backend.js';
import { InvalidCheckpointError } from './errors.js';

/**
 * A place in a store's whole log: one position per partition, as opaque text. Store it (it is a
 * plain string, so JSON and any database column carry it), compare it with `compareCheckpoints`,
 * and hand it back to `readAll`, `project` or `subscribe` to go on from there. A checkpoint belongs
 * to the store it came from; another store refuses it.
 */
export type Checkpoint = string;

/** The format this release writes. A checkpoint with a higher version comes from a newer release. */
const FORMAT = 1;

function digest(text: string, hexDigits: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, hexDigits);
}

/** The part of a checkpoint that names the store: its log ID and partition count, hashed. */
function storeTag(log: LogDescriptor): string {
  return digest(`${log.id}\u0000${log.partitions}`, 12);
}

/** @internal Encodes `positions` (one per partition) as a checkpoint of `log`. */
export function encodeCheckpoint(log: LogDescriptor, positions: readonly number[]): Checkpoint {
  const body = `${FORMAT}.${storeTag(log)}.${positions.join('-')}`;
  return `${body}.${digest(body, 8)}`;
}

/** @internal The start of `log`: position 0 in every partition. */
export function startPositions(log: LogDescriptor): number[] {
  return new Array<number>(log.partitions).fill(0);
}

/**
 * @internal Decodes a checkpoint of `log`, or throws `InvalidCheckpointError` saying what is wrong:
 * not a checkpoint, altered, from a newer release, or another store's.
 */
export function decodeCheckpoint(log: LogDescriptor, checkpoint: unknown, name = 'checkpoint'): number[] {
  const { tag, positions } = parse(checkpoint, name);
  if (tag !== storeTag(log) || positions.length !== log.partitions) {
    throw new InvalidCheckpointError(name, "belongs to another store (or to this store's data with another partition count)", checkpoint);
  }
  return positions;
}

/**
 * Orders two checkpoints of one store: negative when `a` is before `b`, positive when after, 0 when
 * equal, and `undefined` when neither contains the other (possible only across partitions: `a` is
 * ahead in one, `b` in another). Throws `InvalidCheckpointError` for text that is not a checkpoint
 * or for checkpoints of two different stores.
 */
export function compareCheckpoints(a: Checkpoint, b: Checkpoint): number | undefined {
  const left = parse(a, 'a');
  const right = parse(b, 'b');
  if (left.tag !== right.tag || left.positions.length !== right.positions.length) {
    throw new InvalidCheckpointError('b', 'belongs to another store than a', b);
  }
  let sign = 0;
  for (let i = 0; i < left.positions.length; i++) {
    const d = Math.sign((left.positions[i] as number) - (right.positions[i] as number));
    if (d === 0) continue;
    if (sign !== 0 && d !== sign) return undefined;
    sign = d;
  }
  return sign;
}

/** Checks a checkpoint's format, version and checksum, and reads its store tag and positions. */
function parse(checkpoint: unknown, name: string): { tag: string; positions: number[] } {
  if (typeof checkpoint !== 'string') throw new InvalidCheckpointError(name, 'must be a checkpoint string', checkpoint);
  const parts = checkpoint.split('.');
  const version = Number(parts[0]);
  if (parts.length >= 2 && Number.isInteger(version) && version > FORMAT) {
    throw new InvalidCheckpointError(
      name,
      `comes from a newer release of Timebox (checkpoint format ${version}; this release reads format ${FORMAT}): upgrade @timebox/core`,
      checkpoint,
    );
  }
  if (parts.length !== 4 || parts[0] !== String(FORMAT)) throw new InvalidCheckpointError(name, 'is not a Timebox checkpoint', checkpoint);
  const [, tag, positionText, check] = parts as [string, string, string, string];
  if (digest(`${FORMAT}.${tag}.${positionText}`, 8) !== check) {
    throw new InvalidCheckpointError(name, 'was altered (its checksum does not match)', checkpoint);
  }
  const positions = positionText.split('-').map(Number);
  if (positions.some((p) => !Number.isSafeInteger(p) || p < 0)) {
    throw new InvalidCheckpointError(name, 'holds positions that are not whole numbers', checkpoint);
  }
  return { tag, positions };
}
