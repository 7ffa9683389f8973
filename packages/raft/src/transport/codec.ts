/**
 * The binary encoding of consensus messages. Layout of one message: a type tag (u8), `from`,
 * `to` (strings), `term` (varint), then the type's own fields in declaration order. Entry and
 * proposal data travel as raw bytes behind a varint length; numbers are varints; booleans a byte.
 */
import type { Entry, Message, Proposal } from '../consensus/types.js';
import { ByteReader, ByteWriter } from './binary.js';
import { CodecError } from './errors.js';

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
} as const satisfies Record<Message['type'], number>;

// Entry flags: bit 0 = empty entry (else command), bit 1 = a proposal ID follows.
const ENTRY_EMPTY = 1;
const ENTRY_HAS_PROPOSAL = 2;

/** Appends the encoding of `message` to `writer`. Throws `CodecError` for a value the wire cannot carry. */
export function encodeMessage(writer: ByteWriter, message: Message): void {
  const tag = (TAG as Record<string, number | undefined>)[message.type];
  if (tag === undefined) throw new CodecError(`unknown message type ${JSON.stringify(message.type)}`);
  writer.u8(tag);
  writer.string(message.from, 'from');
  writer.string(message.to, 'to');
  writer.uint(message.term, 'term');
  switch (message.type) {
    case 'vote':
    case 'pre-vote':
      writer.uint(message.lastLogIndex, 'lastLogIndex');
      writer.uint(message.lastLogTerm, 'lastLogTerm');
      return;
    case 'vote-response':
    case 'pre-vote-response':
      writer.bool(message.granted);
      return;
    case 'append':
      writer.uint(message.prevIndex, 'prevIndex');
      writer.uint(message.prevTerm, 'prevTerm');
      writer.uint(message.commit, 'commit');
      writer.uint(message.entries.length, 'entries.length');
      for (const entry of message.entries) encodeEntry(writer, entry);
      return;
    case 'append-response':
      writer.uint(message.index, 'index');
      writer.bool(message.rejected);
      writer.uint(message.hintIndex, 'hintIndex');
      writer.uint(message.hintTerm, 'hintTerm');
      return;
    case 'heartbeat':
      writer.uint(message.commit, 'commit');
      writer.nullableString(message.context, 'context');
      return;
    case 'heartbeat-response':
      writer.nullableString(message.context, 'context');
      return;
    case 'snapshot': {
      const { meta, data } = message.snapshot;
      writer.uint(meta.index, 'snapshot.meta.index');
      writer.uint(meta.term, 'snapshot.meta.term');
      writer.uint(meta.voters.length, 'snapshot.meta.voters.length');
      for (const voter of meta.voters) writer.string(voter, 'snapshot.meta.voters[]');
      writer.bytes(data, 'snapshot.data');
      return;
    }
    case 'propose':
      writer.uint(message.proposals.length, 'proposals.length');
      for (const proposal of message.proposals) {
        writer.string(proposal.id, 'proposal.id');
        writer.bytes(proposal.data, 'proposal.data');
      }
      return;
    case 'read-index':
      writer.string(message.context, 'context');
      return;
    case 'read-index-response':
      writer.string(message.context, 'context');
      writer.uint(message.index, 'index');
      return;
  }
}

function encodeEntry(writer: ByteWriter, entry: Entry): void {
  writer.uint(entry.term, 'entry.term');
  writer.uint(entry.index, 'entry.index');
  let flags = entry.kind === 'empty' ? ENTRY_EMPTY : 0;
  if (entry.kind !== 'empty' && entry.kind !== 'command')
    throw new CodecError(`entry.kind must be "command" or "empty" (got ${JSON.stringify(entry.kind)})`);
  if (entry.proposalId !== null) flags |= ENTRY_HAS_PROPOSAL;
  writer.u8(flags);
  if (entry.proposalId !== null) writer.string(entry.proposalId, 'entry.proposalId');
  writer.bytes(entry.data, 'entry.data');
}

/**
 * Decodes one message occupying all of `buffer[start, end)`. Byte fields (entry, proposal and
 * snapshot data) are views into `buffer`: pass an input the caller owns and will not reuse
 * (see {@link decodeOwnedMessage} for a frame cut from a socket chunk). Throws `CodecError`.
 */
export function decodeMessage(buffer: Buffer, start = 0, end = buffer.length): Message {
  const reader = new ByteReader(buffer, start, end);
  const tag = reader.u8('message type');
  const from = reader.string('from');
  const to = reader.string('to');
  const term = reader.uint('term');
  const message = decodeBody(reader, tag, from, to, term);
  if (reader.remaining !== 0) throw new CodecError(`${reader.remaining} unexpected bytes after a ${message.type} message`);
  return message;
}

/** Tags whose messages carry byte arrays, which must not alias a buffer the socket reuses. */
const CARRIES_BYTES = new Set<number>([TAG.append, TAG.snapshot, TAG.propose]);

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
        lastLogIndex: reader.uint('lastLogIndex'),
        lastLogTerm: reader.uint('lastLogTerm'),
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
      const prevIndex = reader.uint('prevIndex');
      const prevTerm = reader.uint('prevTerm');
      const commit = reader.uint('commit');
      const count = reader.uint('entries.length');
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
        index: reader.uint('index'),
        rejected: reader.bool('rejected'),
        hintIndex: reader.uint('hintIndex'),
        hintTerm: reader.uint('hintTerm'),
      };
    case TAG.heartbeat:
      return { type: 'heartbeat', from, to, term, commit: reader.uint('commit'), context: reader.nullableString('context') };
    case TAG['heartbeat-response']:
      return { type: 'heartbeat-response', from, to, term, context: reader.nullableString('context') };
    case TAG.snapshot: {
      const index = reader.uint('snapshot.meta.index');
      const snapshotTerm = reader.uint('snapshot.meta.term');
      const voterCount = reader.uint('snapshot.meta.voters.length');
      if (voterCount > reader.remaining)
        throw new CodecError(`snapshot.meta.voters.length ${voterCount} does not fit in the ${reader.remaining} bytes left`);
      const voters = new Array<string>(voterCount);
      for (let position = 0; position < voterCount; position++) voters[position] = reader.string('snapshot.meta.voters[]');
      const data = reader.bytes('snapshot.data');
      return { type: 'snapshot', from, to, term, snapshot: { meta: { index, term: snapshotTerm, voters }, data } };
    }
    case TAG.propose: {
      const count = reader.uint('proposals.length');
      if (count * 2 > reader.remaining)
        throw new CodecError(`proposals.length ${count} does not fit in the ${reader.remaining} bytes left`);
      const proposals = new Array<Proposal>(count);
      for (let index = 0; index < count; index++)
        proposals[index] = { id: reader.string('proposal.id'), data: reader.bytes('proposal.data') };
      return { type: 'propose', from, to, term, proposals };
    }
    case TAG['read-index']:
      return { type: 'read-index', from, to, term, context: reader.string('context') };
    case TAG['read-index-response']:
      return { type: 'read-index-response', from, to, term, context: reader.string('context'), index: reader.uint('index') };
    default:
      throw new CodecError(`unknown message type tag ${tag}`);
  }
}

function decodeEntry(reader: ByteReader): Entry {
  const term = reader.uint('entry.term');
  const index = reader.uint('entry.index');
  const flags = reader.u8('entry.flags');
  if (flags > (ENTRY_EMPTY | ENTRY_HAS_PROPOSAL)) throw new CodecError(`entry.flags has unknown bits (${flags})`);
  const proposalId = (flags & ENTRY_HAS_PROPOSAL) !== 0 ? reader.string('entry.proposalId') : null;
  return { term, index, kind: (flags & ENTRY_EMPTY) !== 0 ? 'empty' : 'command', proposalId, data: reader.bytes('entry.data') };
}

/** Encodes one message into a fresh buffer (tests and tools; the transport encodes into its send buffer). */
export function encodeMessageToBuffer(message: Message): Buffer {
  const writer = new ByteWriter(256);
  encodeMessage(writer, message);
  return writer.take();
}
