/**
 * Several proposals carried by one log entry. The server wraps the proposals it hands to
 * consensus together into one entry, so the log, the write-ahead log and the messages to the
 * followers pay their per-entry costs (frames, checksums, index slots, headers, bookkeeping) once
 * per batch instead of once per write. When committed entries reach the state machine, an
 * envelope is unpacked again into one entry per proposal, each with its own proposal ID and all
 * at the envelope's log index; a proposal offered again later (after a lost forward) is
 * deduplicated by its own ID, whatever envelope carried it.
 *
 * An envelope is recognised by its entry's proposal ID, which starts with `ENVELOPE_ID_PREFIX`:
 * the server makes every proposal ID itself and never makes one that starts so. Its data is
 * `count` varint, then per proposal its ID and data, each as varint length + bytes.
 */
import type { Proposal } from '../consensus/types.js';
import type { CommittedEntry } from './ports.js';
import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { codecError, CodecError } from '../transport/errors.js';

/** The proposal ID prefix of an envelope entry. */
export const ENVELOPE_ID_PREFIX = 'batch/';

/** One proposal carrying `proposals` (at least two) under the envelope ID `id`. */
export function wrapProposals(id: string, proposals: readonly Proposal[]): Proposal {
  let bytes = 8;
  for (const proposal of proposals) bytes += proposal.id.length * 3 + proposal.data.length + 16;
  const out = new ByteWriter(bytes, codecError);
  out.varuint(proposals.length, 'envelope count');
  for (const proposal of proposals) {
    out.taggedString(proposal.id, 'proposal id');
    out.bytes(proposal.data, 'proposal data');
  }
  return { id: ENVELOPE_ID_PREFIX + id, data: out.take() };
}

/** Whether a committed entry is an envelope. */
export function isEnvelope(entry: CommittedEntry): boolean {
  return entry.kind === 'command' && entry.proposalId !== null && entry.proposalId.startsWith(ENVELOPE_ID_PREFIX);
}

/**
 * `entries` with every envelope replaced by the entries it carries (same log index, in order).
 * Returns `entries` itself when there is no envelope. Throws `CodecError` for a malformed one.
 */
export function unwrapEnvelopes(entries: readonly CommittedEntry[]): readonly CommittedEntry[] {
  if (!entries.some(isEnvelope)) return entries;
  const out: CommittedEntry[] = [];
  for (const entry of entries) {
    if (!isEnvelope(entry)) {
      out.push(entry);
      continue;
    }
    const data = Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength);
    const input = new ByteReader(data, codecError);
    const count = input.varuint('envelope count');
    for (let i = 0; i < count; i++) {
      const proposalId = input.taggedString('proposal id');
      out.push({ index: entry.index, kind: 'command', proposalId, data: input.bytes('proposal data') });
    }
    if (input.remaining !== 0)
      throw new CodecError(
        `${input.remaining} unexpected bytes after the proposals of envelope ${entry.proposalId} at index ${entry.index}`,
      );
  }
  return out;
}
