/**
 * The binary encoding of consensus messages. Layout of one message: a type tag (u8), `from`,
 * `to` (strings), `term` (varint), then the type's own fields in declaration order. Entry and
 * proposal data travel as raw bytes behind a varint length; numbers are varints; booleans a byte.
 */
import type { Entry, Message, Proposal, SnapshotMeta } from '../consensus/types.js';
import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { codecError, CodecError } from './errors.js';

const TAG = {
  vote: 1,
  'pre-vote': 2,
  'vote-response': 3,
  'pre-vote-response': 4,
  append: 5,
  'append-response': 6,
  heartbeat: 7,
  'heartbeat-response': 8,
  snapshot: 9,
  propose: 10,
  'read-index': 11,
  'read-index-response': 12,
  'timeout-now': 13,
} as const satisfies Record<Message['type'], number>;

/**
 * Variants under tags of their own, so that a message without the new fields encodes exactly as
 * before membership changes existed (and every truncation still fails to decode): a vote request
 * of a leadership transfer, and a snapshot whose configuration has learners or addresses (those
 * two lists sit between the voters and the data).
 */
const TAG_TRANSFER_VOTE = 14;
const TAG_SNAPSHOT_WITH_MEMBERS = 15;

// Entry flags: bit 0 = empty entry, bit 2 = membership-change entry (neither: command), bit 1 = a proposal ID follows.
const ENTRY_EMPTY = 1;
const ENTRY_HAS_PROPOSAL = 2;
const ENTRY_CONFIG = 4;

/** Appends the encoding of `message` to `writer`. Throws `CodecError` for a value the wire cannot carry. */
export function encodeMessage(writer: ByteWriter, message: Message): void {
  const tag = (TAG as Record<string, number | undefined>)[message.type];
  if (tag === undefined) throw new CodecError(`unknown message type ${JSON.stringify(message.type)}`);
  writer.u8(variantTag(message, tag));
  writer.taggedString(message.from, 'from');
  writer.taggedString(message.to, 'to');
  writer.varuint(message.term, 'term');
  switch (message.type) {
    case 'vote':
    case 'pre-vote':
      writer.varuint(message.lastLogIndex, 'lastLogIndex');
      writer.varuint(message.lastLogTerm, 'lastLogTerm');
      return;
    case 'vote-response':
    case 'pre-vote-response':
      writer.bool(message.granted);
      return;
    case 'append':
      writer.varuint(message.prevIndex, 'prevIndex');
      writer.varuint(message.prevTerm, 'prevTerm');
      writer.varuint(message.commit, 'commit');
      writer.varuint(message.entries.length, 'entries.length');
      for (const entry of message.entries) encodeEntry(writer, entry);
      return;
    case 'append-response':
      writer.varuint(message.index, 'index');
      writer.bool(message.rejected);
      writer.varuint(message.hintIndex, 'hintIndex');
      writer.varuint(message.hintTerm, 'hintTerm');
      return;
    case 'heartbeat':
      writer.varuint(message.commit, 'commit');
      writer.nullableTaggedString(message.context, 'context');
      return;
    case 'heartbeat-response':
      writer.nullableTaggedString(message.context, 'context');
      return;
    case 'snapshot': {
      const { meta, data } = message.snapshot;
      writer.varuint(meta.index, 'snapshot.meta.index');
      writer.varuint(meta.term, 'snapshot.meta.term');
      writer.varuint(meta.voters.length, 'snapshot.meta.voters.length');
      for (const voter of meta.voters) writer.taggedString(voter, 'snapshot.meta.voters[]');
      if (hasMembers(meta)) {
        const learners = meta.learners ?? [];
        const addresses = Object.entries(meta.addresses ?? {});
        writer.varuint(learners.length, 'snapshot.meta.learners.length');
        for (const learner of learners) writer.taggedString(learner, 'snapshot.meta.learners[]');
        writer.varuint(addresses.length, 'snapshot.meta.addresses.length');
        for (const [id, address] of addresses) {
          writer.taggedString(id, 'snapshot.meta.addresses[].id');
          writer.taggedString(address, 'snapshot.meta.addresses[].address');
        }
      }
      writer.bytes(data, 'snapshot.data');
      return;
    }
    case 'timeout-now':
      return;
    case 'propose':
      writer.varuint(message.proposals.length, 'proposals.length');
      for (const proposal of message.proposals) {
        writer.taggedString(proposal.id, 'proposal.id');
        writer.bytes(proposal.data, 'proposal.data');
      }
      return;
    case 'read-index':
      writer.taggedString(message.context, 'context');
      return;
    case 'read-index-response':
      writer.taggedString(message.context, 'context');
      writer.varuint(message.index, 'index');
      return;
  }
}

function hasMembers(meta: SnapshotMeta): boolean {
  return (meta.learners?.length ?? 0) > 0 || Object.keys(meta.addresses ?? {}).length > 0;
}

function variantTag(message: Message, tag: number): number {
  if (message.type === 'vote' && message.transfer === true) return TAG_TRANSFER_VOTE;
  if (message.type === 'snapshot' && hasMembers(message.snapshot.meta)) return TAG_SNAPSHOT_WITH_MEMBERS;
  return tag;
}

function encodeEntry(writer: ByteWriter, entry: Entry): void {
  writer.varuint(entry.term, 'entry.term');
  writer.varuint(entry.index, 'entry.index');
  let flags = entry.kind === 'empty' ? ENTRY_EMPTY : entry.kind === 'config' ? ENTRY_CONFIG : 0;
  if (entry.kind !== 'empty' && entry.kind !== 'command' && entry.kind !== 'config')
    throw new CodecError(`entry.kind must be "command", "empty" or "config" (got ${JSON.stringify(entry.kind)})`);
  if (entry.proposalId !== null) flags |= ENTRY_HAS_PROPOSAL;
  writer.u8(flags);
  if (entry.proposalId !== null) writer.taggedString(entry.proposalId, 'entry.proposalId');
  writer.bytes(entry.data, 'entry.data');
}

/**
 * Decodes one message occupying all of `buffer[start, end)`. Byte fields (entry, proposal and
 * snapshot data) are views into `buffer`: pass an input the caller owns and will not reuse
 * (see {@link decodeOwnedMessage} for a frame cut from a socket chunk). Throws `CodecError`.
 */
export function decodeMessage(buffer: Buffer, start = 0, end = buffer.length): Message {
  const reader = new ByteReader(buffer, codecError, start, end);
  const tag = reader.u8('message type');
  const from = reader.taggedString('from');
  const to = reader.taggedString('to');
  const term = reader.varuint('term');
  const message = decodeBody(reader, tag, from, to, term);
  if (reader.remaining !== 0) throw new CodecError(`${reader.remaining} unexpected bytes after a ${message.type} message`);
  return message;
}

/** Tags whose messages carry byte arrays, which must not alias a buffer the socket reuses. */
const CARRIES_BYTES = new Set<number>([TAG.append, TAG.snapshot, TAG_SNAPSHOT_WITH_MEMBERS, TAG.propose]);

/**
 * Like {@link decodeMessage}, for a frame that may be a view into a larger socket chunk: when the
 * message carries byte arrays, the frame is copied once so that entries keep only their own
 * message's bytes alive, not the whole chunk.
 */
export function decodeOwnedMessage(frame: Buffer, owned: boolean): Message {
  if (owned || frame.length === 0 || !CARRIES_BYTES.has(frame[0] as number)) return decodeMessage(frame);
  // A fresh ArrayBuffer of its own: Buffer.from would place a small copy in the shared pool slab.
  const copy = new Uint8Array(frame);
  return decodeMessage(Buffer.from(copy.buffer, 0, copy.length));
}

function decodeBody(reader: ByteReader, tag: number, from: string, to: string, term: number): Message {
  switch (tag) {
    case TAG.vote:
    case TAG['pre-vote']:
      return {
        type: tag === TAG.vote ? 'vote' : 'pre-vote',
        from,
        to,
        term,
        lastLogIndex: reader.varuint('lastLogIndex'),
        lastLogTerm: reader.varuint('lastLogTerm'),
      };
    case TAG_TRANSFER_VOTE:
      return {
        type: 'vote',
        from,
        to,
        term,
        lastLogIndex: reader.varuint('lastLogIndex'),
        lastLogTerm: reader.varuint('lastLogTerm'),
        transfer: true,
      };
    case TAG['vote-response']:
    case TAG['pre-vote-response']:
      return {
        type: tag === TAG['vote-response'] ? 'vote-response' : 'pre-vote-response',
        from,
        to,
        term,
        granted: reader.bool('granted'),
      };
    case TAG.append: {
      const prevIndex = reader.varuint('prevIndex');
      const prevTerm = reader.varuint('prevTerm');
      const commit = reader.varuint('commit');
      const count = reader.varuint('entries.length');
      // Each entry takes at least 4 bytes, so a huge count in a short frame fails before allocating.
      if (count * 4 > reader.remaining) throw new CodecError(`entries.length ${count} does not fit in the ${reader.remaining} bytes left`);
      const entries = new Array<Entry>(count);
      for (let index = 0; index < count; index++) entries[index] = decodeEntry(reader);
      return { type: 'append', from, to, term, prevIndex, prevTerm, entries, commit };
    }
    case TAG['append-response']:
      return {
        type: 'append-response',
        from,
        to,
        term,
        index: reader.varuint('index'),
        rejected: reader.bool('rejected'),
        hintIndex: reader.varuint('hintIndex'),
        hintTerm: reader.varuint('hintTerm'),
      };
    case TAG.heartbeat:
      return { type: 'heartbeat', from, to, term, commit: reader.varuint('commit'), context: reader.nullableTaggedString('context') };
    case TAG['heartbeat-response']:
      return { type: 'heartbeat-response', from, to, term, context: reader.nullableTaggedString('context') };
    case TAG.snapshot:
    case TAG_SNAPSHOT_WITH_MEMBERS: {
      const index = reader.varuint('snapshot.meta.index');
      const snapshotTerm = reader.varuint('snapshot.meta.term');
      const voterCount = reader.varuint('snapshot.meta.voters.length');
      if (voterCount > reader.remaining)
        throw new CodecError(`snapshot.meta.voters.length ${voterCount} does not fit in the ${reader.remaining} bytes left`);
      const voters = new Array<string>(voterCount);
      for (let position = 0; position < voterCount; position++) voters[position] = reader.taggedString('snapshot.meta.voters[]');
      if (tag === TAG.snapshot) {
        const data = reader.bytes('snapshot.data');
        return { type: 'snapshot', from, to, term, snapshot: { meta: { index, term: snapshotTerm, voters }, data } };
      }
      const learnerCount = reader.varuint('snapshot.meta.learners.length');
      if (learnerCount > reader.remaining)
        throw new CodecError(`snapshot.meta.learners.length ${learnerCount} does not fit in the ${reader.remaining} bytes left`);
      const learners = new Array<string>(learnerCount);
      for (let position = 0; position < learnerCount; position++) learners[position] = reader.taggedString('snapshot.meta.learners[]');
      const addressCount = reader.varuint('snapshot.meta.addresses.length');
      if (addressCount * 2 > reader.remaining)
        throw new CodecError(`snapshot.meta.addresses.length ${addressCount} does not fit in the ${reader.remaining} bytes left`);
      const pairs = new Array<[string, string]>(addressCount);
      for (let position = 0; position < addressCount; position++) {
        pairs[position] = [reader.taggedString('snapshot.meta.addresses[].id'), reader.taggedString('snapshot.meta.addresses[].address')];
      }
      // fromEntries defines own properties, so an ID like "__proto__" stays a plain key.
      const addresses = Object.fromEntries(pairs);
      const data = reader.bytes('snapshot.data');
      return { type: 'snapshot', from, to, term, snapshot: { meta: { index, term: snapshotTerm, voters, learners, addresses }, data } };
    }
    case TAG.propose: {
      const count = reader.varuint('proposals.length');
      if (count * 2 > reader.remaining)
        throw new CodecError(`proposals.length ${count} does not fit in the ${reader.remaining} bytes left`);
      const proposals = new Array<Proposal>(count);
      for (let index = 0; index < count; index++)
        proposals[index] = { id: reader.taggedString('proposal.id'), data: reader.bytes('proposal.data') };
      return { type: 'propose', from, to, term, proposals };
    }
    case TAG['read-index']:
      return { type: 'read-index', from, to, term, context: reader.taggedString('context') };
    case TAG['read-index-response']:
      return { type: 'read-index-response', from, to, term, context: reader.taggedString('context'), index: reader.varuint('index') };
    case TAG['timeout-now']:
      return { type: 'timeout-now', from, to, term };
    default:
      throw new CodecError(`unknown message type tag ${tag}`);
  }
}

function decodeEntry(reader: ByteReader): Entry {
  const term = reader.varuint('entry.term');
  const index = reader.varuint('entry.index');
  const flags = reader.u8('entry.flags');
  if (flags > (ENTRY_EMPTY | ENTRY_HAS_PROPOSAL | ENTRY_CONFIG) || (flags & (ENTRY_EMPTY | ENTRY_CONFIG)) === (ENTRY_EMPTY | ENTRY_CONFIG))
    throw new CodecError(`entry.flags has unknown bits (${flags})`);
  const proposalId = (flags & ENTRY_HAS_PROPOSAL) !== 0 ? reader.taggedString('entry.proposalId') : null;
  const kind = (flags & ENTRY_EMPTY) !== 0 ? 'empty' : (flags & ENTRY_CONFIG) !== 0 ? 'config' : 'command';
  return { term, index, kind, proposalId, data: reader.bytes('entry.data') };
}

/** Encodes one message into a fresh buffer (tests and tools; the transport encodes into its send buffer). */
export function encodeMessageToBuffer(message: Message): Buffer {
  const writer = new ByteWriter(256, codecError);
  encodeMessage(writer, message);
  return writer.take();
}
