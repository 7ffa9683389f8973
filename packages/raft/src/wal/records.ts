import type { Entry, HardState } from '../consensus/types.js';
import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { malformedRecord, MalformedRecordError } from './errors.js';

/**
 * What one WAL frame carries. Replaying the records of all segments in order rebuilds the log:
 * an entry overwrites everything from its index on, a hard state replaces the previous one, and a
 * reset (a snapshot received from the leader) empties the log down to the snapshot's index.
 */
export type WalRecord =
  | { readonly type: 'entry'; readonly entry: Entry }
  | { readonly type: 'hard-state'; readonly hardState: HardState }
  | { readonly type: 'reset'; readonly index: number; readonly term: number };

const ENTRY = 1;
const HARD_STATE = 2;
const RESET = 3;

const KIND_EMPTY = 0;
const KIND_COMMAND = 1;
const KIND_CONFIG = 2;

/** The frame type byte followed by the record's body. */
export function encodeRecord(record: WalRecord): Buffer {
  const out = new ByteWriter(record.type === 'entry' ? record.entry.data.byteLength + 64 : 64);
  return Buffer.from(writeRecord(out, record).view());
}

/** Appends the record's frame content (type byte and body) to `out`. */
export function writeRecord(out: ByteWriter, record: WalRecord): ByteWriter {
  switch (record.type) {
    case 'entry': {
      const { entry } = record;
      out
        .u8(ENTRY)
        .u64le(entry.term)
        .u64le(entry.index)
        .u8(entry.kind === 'command' ? KIND_COMMAND : entry.kind === 'config' ? KIND_CONFIG : KIND_EMPTY);
      out.nullableString32(entry.proposalId).bytes32(entry.data);
      break;
    }
    case 'hard-state':
      out.u8(HARD_STATE).u64le(record.hardState.term).u64le(record.hardState.commit).nullableString32(record.hardState.vote);
      break;
    case 'reset':
      out.u8(RESET).u64le(record.index).u64le(record.term);
      break;
  }
  return out;
}

/** Decodes a frame's content; throws {@link MalformedRecordError} if it does not decode. */
export function decodeRecord(content: Buffer): WalRecord {
  const input = new ByteReader(content, malformedRecord);
  const type = input.u8();
  let record: WalRecord;
  switch (type) {
    case ENTRY: {
      const term = input.u64le();
      const index = input.u64le();
      const kindByte = input.u8();
      if (kindByte !== KIND_EMPTY && kindByte !== KIND_COMMAND && kindByte !== KIND_CONFIG)
        throw new MalformedRecordError(`unknown entry kind ${kindByte}`);
      const proposalId = input.nullableString32();
      const data = input.bytes32();
      const kind = kindByte === KIND_COMMAND ? 'command' : kindByte === KIND_CONFIG ? 'config' : 'empty';
      record = { type: 'entry', entry: { term, index, kind, proposalId, data } };
      break;
    }
    case HARD_STATE: {
      const term = input.u64le();
      const commit = input.u64le();
      const vote = input.nullableString32();
      record = { type: 'hard-state', hardState: { term, vote, commit } };
      break;
    }
    case RESET: {
      const index = input.u64le();
      const term = input.u64le();
      record = { type: 'reset', index, term };
      break;
    }
    default:
      throw new MalformedRecordError(`unknown record type ${type}`);
  }
  input.end();
  return record;
}
