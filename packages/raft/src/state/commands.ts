/**
 * The commands a write becomes in the replicated log, their results, and the compact binary codec
 * of both. Every field the apply step needs travels in the command, including time (`at`), so
 * applying a command gives the same state and result on every node, whatever its clock says.
 *
 * Layout: byte 0 is the codec version (1), byte 1 the command tag, then the fields in order.
 * Integers are unsigned LEB128, times float64 big-endian (epoch ms), strings and byte strings
 * LEB128-length-prefixed UTF-8. An aggregate ID is a part count followed by its parts. An append's
 * event sequences are not sent: they run from `expectedSequence`, as core assigns them.
 */
import type { AggregateId, AppendRequest, EventRecord, IndexUpdate, ProjectionRecord, StoredEventRecord } from '@timebox/core';
import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { decodeError, DecodeError } from './errors.js';

/** Appends a batch at an expected sequence, with its folded index update (core's `AppendRequest`). */
export interface AppendCommand extends AppendRequest {
  readonly type: 'append';
}

/** Stores a snapshot covering events below `sequence`, newer-only; `trim` deletes those events. */
export interface SaveSnapshotCommand {
  readonly type: 'save-snapshot';
  readonly id: AggregateId;
  readonly data: string;
  readonly sequence: number;
  readonly trim: boolean;
}

/** Moves an aggregate into the archive and clears its live records and index. */
export interface ArchiveCommand {
  readonly type: 'archive';
  readonly id: AggregateId;
}

/** Takes the oldest archive record that is free or whose lease expired at `at`, until `at + leaseMs`. */
export interface LeaseCommand {
  readonly type: 'lease';
  readonly consumer: string;
  /** The proposer's clock, epoch ms. */
  readonly at: number;
  readonly leaseMs: number;
}

/** Names one lease on one archive record: a later lease of the same record has a higher `lease`. */
export interface LeaseHandle {
  readonly record: number;
  readonly lease: number;
  readonly consumer: string;
}

/** Extends a lease to `at + leaseMs`, only while it is still held by `consumer`. */
export interface RenewCommand extends LeaseHandle {
  readonly type: 'renew';
  readonly at: number;
  readonly leaseMs: number;
}

/** The handler succeeded: deletes the record, if the lease is still held. */
export interface AckCommand extends LeaseHandle {
  readonly type: 'ack';
}

/** The handler threw: frees the record at once for the next consumer, if the lease is still held. */
export interface ReleaseCommand extends LeaseHandle {
  readonly type: 'release';
}

/** Names the log: the first one applied sets the log's identity for good; later ones change nothing. */
export interface OpenLogCommand {
  readonly type: 'open-log';
  /** A fresh random ID, proposed by whichever member first found the log unnamed. */
  readonly logId: string;
}

/**
 * Takes or renews a projection's lease for `holder` if it is free, expired at `at`, or already
 * `holder`'s, until `at + leaseMs`; creates the record when missing.
 */
export interface ClaimProjectionCommand {
  readonly type: 'claim-projection';
  readonly name: string;
  readonly holder: string;
  /** The proposer's clock, epoch ms: the apply step judges expiry by it, so every member agrees. */
  readonly at: number;
  readonly leaseMs: number;
}

/** Stores a projection's checkpoint and last error if `holder` holds the lease at `at` and the generation matches. */
export interface SaveProjectionCommand {
  readonly type: 'save-projection';
  readonly name: string;
  readonly holder: string;
  readonly generation: number;
  /** Absent: keep the stored one. */
  readonly checkpoint: string | undefined;
  /** A string sets it, null clears it, undefined keeps it. */
  readonly lastError: string | null | undefined;
  readonly at: number;
  readonly leaseMs: number;
}

/** Gives a projection's lease up if `holder` has it. */
export interface ReleaseProjectionCommand {
  readonly type: 'release-projection';
  readonly name: string;
  readonly holder: string;
}

/** Replaces a projection's checkpoint (absent: the start), clears its last error and bumps its generation. */
export interface ResetProjectionCommand {
  readonly type: 'reset-projection';
  readonly name: string;
  readonly checkpoint: string | undefined;
}

export type Command =
  | AppendCommand
  | SaveSnapshotCommand
  | ArchiveCommand
  | LeaseCommand
  | RenewCommand
  | AckCommand
  | ReleaseCommand
  | OpenLogCommand
  | ClaimProjectionCommand
  | SaveProjectionCommand
  | ReleaseProjectionCommand
  | ResetProjectionCommand;

/** What applying a command answered; identical on every node. */
export type CommandResult =
  | { readonly type: 'ok' }
  /** A non-empty append: its events took the log positions `firstPosition` … `firstPosition + count - 1`. */
  | { readonly type: 'appended'; readonly firstPosition: number; readonly count: number }
  /** An append whose expected sequence was not the aggregate's next sequence. */
  | { readonly type: 'conflict'; readonly actualSequence: number; readonly newEvents: StoredEventRecord[] }
  /** A projection claim: whether the holder now holds the lease, and the record after the attempt. */
  | { readonly type: 'claimed'; readonly held: boolean; readonly record: ProjectionRecord }
  /** A projection save whose generation no longer matches (a reset came first). */
  | { readonly type: 'generation-changed' }
  /** A snapshot beyond the end of the log. */
  | { readonly type: 'invalid-sequence'; readonly nextSequence: number }
  /** A lease was taken: read the record from the local state. */
  | { readonly type: 'leased'; readonly record: number; readonly lease: number; readonly expiresAt: number }
  /** No record is free; `earliestExpiry` is when the soonest lease lapses (null: no records at all). */
  | { readonly type: 'nothing-available'; readonly earliestExpiry: number | null }
  /** The lease named by renew, ack or release is no longer held (it lapsed and was taken, or the record is gone). */
  | { readonly type: 'lease-lost' }
  /** The entry did not decode, or broke a storage limit: nothing was changed. */
  | { readonly type: 'invalid-command'; readonly reason: string };

const VERSION = 1;
const TAGS = {
  append: 1,
  'save-snapshot': 2,
  archive: 3,
  lease: 4,
  renew: 5,
  ack: 6,
  release: 7,
  'open-log': 8,
  'claim-projection': 9,
  'save-projection': 10,
  'release-projection': 11,
  'reset-projection': 12,
} as const;

function writeOptional(out: ByteWriter, text: string | undefined): void {
  out.u8(text === undefined ? 0 : 1);
  if (text !== undefined) out.string(text);
}

function readOptional(input: ByteReader): string | undefined {
  const flag = input.u8();
  if (flag > 1) throw new DecodeError(`bad optional-string flag ${flag}`);
  return flag === 0 ? undefined : input.string();
}

function writeId(out: ByteWriter, id: AggregateId): void {
  out.varuint(id.length);
  for (const part of id) out.string(part);
}

function readId(input: ByteReader): string[] {
  const count = input.count(1);
  if (count === 0) throw new DecodeError('an aggregate ID needs at least one part');
  const parts: string[] = new Array<string>(count);
  for (let i = 0; i < count; i++) parts[i] = input.string();
  return parts;
}

function writeHandle(out: ByteWriter, handle: LeaseHandle): void {
  out.varuint(handle.record).varuint(handle.lease).string(handle.consumer);
}

function readHandle(input: ByteReader): LeaseHandle {
  return { record: input.varuint(), lease: input.varuint(), consumer: input.string() };
}

/** Encodes a command for the log. */
export function encodeCommand(command: Command): Uint8Array {
  const out = new ByteWriter();
  out.u8(VERSION).u8(TAGS[command.type]);
  switch (command.type) {
    case 'append': {
      writeId(out, command.id);
      out.varuint(command.expectedSequence).varuint(command.events.length);
      for (const event of command.events) out.string(event.type).f64be(event.timestamp).string(event.data);
      const index = command.index;
      if (index === undefined) {
        out.u8(0);
      } else {
        out.u8(index.status === undefined ? 1 : 2);
        if (index.status !== undefined) out.string(index.status);
        const labels = Object.entries(index.labels);
        out.f64be(index.statusTime).varuint(labels.length);
        for (const [name, value] of labels) out.string(name).string(value);
      }
      break;
    }
    case 'save-snapshot':
      writeId(out, command.id);
      out
        .string(command.data)
        .varuint(command.sequence)
        .u8(command.trim ? 1 : 0);
      break;
    case 'archive':
      writeId(out, command.id);
      break;
    case 'lease':
      out.string(command.consumer).f64be(command.at).varuint(command.leaseMs);
      break;
    case 'renew':
      writeHandle(out, command);
      out.f64be(command.at).varuint(command.leaseMs);
      break;
    case 'ack':
    case 'release':
      writeHandle(out, command);
      break;
    case 'open-log':
      out.string(command.logId);
      break;
    case 'claim-projection':
      out.string(command.name).string(command.holder).f64be(command.at).varuint(command.leaseMs);
      break;
    case 'save-projection':
      out.string(command.name).string(command.holder).varuint(command.generation);
      writeOptional(out, command.checkpoint);
      // 0: keep, 1: clear, 2: set.
      out.u8(command.lastError === undefined ? 0 : command.lastError === null ? 1 : 2);
      if (typeof command.lastError === 'string') out.string(command.lastError);
      out.f64be(command.at).varuint(command.leaseMs);
      break;
    case 'release-projection':
      out.string(command.name).string(command.holder);
      break;
    case 'reset-projection':
      out.string(command.name);
      writeOptional(out, command.checkpoint);
      break;
  }
  return out.finish();
}

function readTime(input: ByteReader, what: string): number {
  const value = input.f64be();
  if (!Number.isFinite(value)) throw new DecodeError(`${what} is not a finite time`);
  return value;
}

/** Decodes a command from the log; throws `DecodeError` for bytes that are not one. */
export function decodeCommand(bytes: Uint8Array): Command {
  const input = new ByteReader(bytes, decodeError);
  const version = input.u8();
  if (version !== VERSION) throw new DecodeError(`unknown command codec version ${version}`);
  const tag = input.u8();
  let command: Command;
  switch (tag) {
    case TAGS.append: {
      const id = readId(input);
      const expectedSequence = input.varuint();
      const count = input.count(10);
      const events: EventRecord[] = new Array<EventRecord>(count);
      for (let i = 0; i < count; i++) {
        const type = input.string();
        const timestamp = readTime(input, 'event timestamp');
        events[i] = { type, sequence: expectedSequence + i, timestamp, data: input.string() };
      }
      if (!Number.isSafeInteger(expectedSequence + count)) throw new DecodeError('sequence beyond the safe range');
      const flag = input.u8();
      let index: IndexUpdate | undefined;
      if (flag === 1 || flag === 2) {
        const status = flag === 2 ? input.string() : undefined;
        const statusTime = readTime(input, 'status time');
        const labelCount = input.count(2);
        const labels: Record<string, string> = {};
        for (let i = 0; i < labelCount; i++) {
          const name = input.string();
          // Own data property even for "__proto__", so no name can reach the prototype.
          Object.defineProperty(labels, name, { value: input.string(), enumerable: true, writable: true, configurable: true });
        }
        index = status === undefined ? { statusTime, labels } : { status, statusTime, labels };
      } else if (flag !== 0) {
        throw new DecodeError(`unknown index flag ${flag}`);
      }
      command = { type: 'append', id, expectedSequence, events, index };
      break;
    }
    case TAGS['save-snapshot']: {
      const id = readId(input);
      const data = input.string();
      const sequence = input.varuint();
      const trim = input.u8();
      if (trim > 1) throw new DecodeError(`bad trim flag ${trim}`);
      command = { type: 'save-snapshot', id, data, sequence, trim: trim === 1 };
      break;
    }
    case TAGS.archive:
      command = { type: 'archive', id: readId(input) };
      break;
    case TAGS.lease:
      command = { type: 'lease', consumer: input.string(), at: readTime(input, 'lease time'), leaseMs: input.varuint() };
      break;
    case TAGS.renew: {
      const handle = readHandle(input);
      command = { type: 'renew', ...handle, at: readTime(input, 'renew time'), leaseMs: input.varuint() };
      break;
    }
    case TAGS.ack:
      command = { type: 'ack', ...readHandle(input) };
      break;
    case TAGS.release:
      command = { type: 'release', ...readHandle(input) };
      break;
    case TAGS['open-log']:
      command = { type: 'open-log', logId: input.string() };
      break;
    case TAGS['claim-projection']: {
      const name = input.string();
      const holder = input.string();
      command = { type: 'claim-projection', name, holder, at: readTime(input, 'claim time'), leaseMs: input.varuint() };
      break;
    }
    case TAGS['save-projection']: {
      const name = input.string();
      const holder = input.string();
      const generation = input.varuint();
      const checkpoint = readOptional(input);
      const errorFlag = input.u8();
      if (errorFlag > 2) throw new DecodeError(`bad last-error flag ${errorFlag}`);
      const lastError = errorFlag === 0 ? undefined : errorFlag === 1 ? null : input.string();
      const at = readTime(input, 'save time');
      command = { type: 'save-projection', name, holder, generation, checkpoint, lastError, at, leaseMs: input.varuint() };
      break;
    }
    case TAGS['release-projection']: {
      const name = input.string();
      command = { type: 'release-projection', name, holder: input.string() };
      break;
    }
    case TAGS['reset-projection']: {
      const name = input.string();
      command = { type: 'reset-projection', name, checkpoint: readOptional(input) };
      break;
    }
    default:
      throw new DecodeError(`unknown command tag ${tag}`);
  }
  input.end();
  return command;
}

const RESULT_TAGS = {
  ok: 1,
  conflict: 2,
  'invalid-sequence': 3,
  leased: 4,
  'nothing-available': 5,
  'lease-lost': 6,
  'invalid-command': 7,
  appended: 8,
  claimed: 9,
  'generation-changed': 10,
} as const;

/** Encodes a result, as stored in the table of applied proposals. */
export function encodeResult(result: CommandResult): Uint8Array {
  return writeResult(new ByteWriter(32), result).finish();
}

/** Writes a result to `out` (a reused writer on the apply path). */
export function writeResult(out: ByteWriter, result: CommandResult): ByteWriter {
  out.u8(RESULT_TAGS[result.type]);
  switch (result.type) {
    case 'conflict':
      out.varuint(result.actualSequence).varuint(result.newEvents.length);
      for (const event of result.newEvents)
        out.varuint(event.sequence).varuint(event.position).string(event.type).f64be(event.timestamp).string(event.data);
      break;
    case 'appended':
      out.varuint(result.firstPosition).varuint(result.count);
      break;
    case 'claimed': {
      const record = result.record;
      out
        .u8(result.held ? 1 : 0)
        .string(record.name)
        .varuint(record.generation)
        .f64be(record.leaseUntil);
      writeOptional(out, record.holder);
      writeOptional(out, record.checkpoint);
      writeOptional(out, record.lastError);
      break;
    }
    case 'invalid-sequence':
      out.varuint(result.nextSequence);
      break;
    case 'leased':
      out.varuint(result.record).varuint(result.lease).f64be(result.expiresAt);
      break;
    case 'nothing-available':
      out.u8(result.earliestExpiry === null ? 0 : 1);
      if (result.earliestExpiry !== null) out.f64be(result.earliestExpiry);
      break;
    case 'invalid-command':
      out.string(result.reason);
      break;
    case 'ok':
    case 'lease-lost':
    case 'generation-changed':
      break;
  }
  return out;
}

/** Decodes what `encodeResult` wrote. */
export function decodeResult(bytes: Uint8Array): CommandResult {
  const input = new ByteReader(bytes, decodeError);
  const tag = input.u8();
  let result: CommandResult;
  switch (tag) {
    case RESULT_TAGS.ok:
      result = { type: 'ok' };
      break;
    case RESULT_TAGS.conflict: {
      const actualSequence = input.varuint();
      const count = input.count(12);
      const newEvents: StoredEventRecord[] = new Array<StoredEventRecord>(count);
      for (let i = 0; i < count; i++) {
        const sequence = input.varuint();
        const position = input.varuint();
        const type = input.string();
        newEvents[i] = { type, sequence, timestamp: input.f64be(), data: input.string(), position };
      }
      result = { type: 'conflict', actualSequence, newEvents };
      break;
    }
    case RESULT_TAGS.appended:
      result = { type: 'appended', firstPosition: input.varuint(), count: input.varuint() };
      break;
    case RESULT_TAGS.claimed: {
      const held = input.u8();
      if (held > 1) throw new DecodeError(`bad held flag ${held}`);
      const name = input.string();
      const generation = input.varuint();
      const leaseUntil = input.f64be();
      const holder = readOptional(input);
      const checkpoint = readOptional(input);
      const lastError = readOptional(input);
      const record: { -readonly [K in keyof ProjectionRecord]: ProjectionRecord[K] } = { name, leaseUntil, generation };
      if (holder !== undefined) record.holder = holder;
      if (checkpoint !== undefined) record.checkpoint = checkpoint;
      if (lastError !== undefined) record.lastError = lastError;
      result = { type: 'claimed', held: held === 1, record: Object.freeze(record) };
      break;
    }
    case RESULT_TAGS['generation-changed']:
      result = { type: 'generation-changed' };
      break;
    case RESULT_TAGS['invalid-sequence']:
      result = { type: 'invalid-sequence', nextSequence: input.varuint() };
      break;
    case RESULT_TAGS.leased:
      result = { type: 'leased', record: input.varuint(), lease: input.varuint(), expiresAt: input.f64be() };
      break;
    case RESULT_TAGS['nothing-available']:
      result = { type: 'nothing-available', earliestExpiry: input.u8() === 0 ? null : input.f64be() };
      break;
    case RESULT_TAGS['lease-lost']:
      result = { type: 'lease-lost' };
      break;
    case RESULT_TAGS['invalid-command']:
      result = { type: 'invalid-command', reason: input.string() };
      break;
    default:
      throw new DecodeError(`unknown result tag ${tag}`);
  }
  input.end();
  return result;
}
