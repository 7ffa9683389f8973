import { describe, expect, it } from 'vitest';
import { CodecError } from '../../src/transport/errors.js';
import type { CommittedEntry } from '../../src/node/ports.js';
import { ENVELOPE_ID_PREFIX, isEnvelope, unwrapEnvelopes, wrapProposals } from '../../src/node/proposal-envelope.js';

const bytes = (...values: number[]) => Uint8Array.from(values);

describe('proposal envelopes', () => {
  it('carry several proposals in one entry and unpack them in order, at the envelope index', () => {
    const envelope = wrapProposals('e1', [
      { id: 'a', data: bytes(1, 2) },
      { id: 'é\u{1F642}', data: bytes() },
      { id: 'c', data: bytes(3) },
    ]);
    expect(envelope.id).toBe(`${ENVELOPE_ID_PREFIX}e1`);
    const entries: CommittedEntry[] = [
      { index: 7, kind: 'command', proposalId: 'single', data: bytes(9) },
      { index: 8, kind: 'command', proposalId: envelope.id, data: envelope.data },
      { index: 9, kind: 'empty', proposalId: null, data: bytes() },
    ];
    expect(isEnvelope(entries[1] as CommittedEntry)).toBe(true);
    expect(unwrapEnvelopes(entries).map((entry) => [entry.index, entry.proposalId, [...entry.data]])).toEqual([
      [7, 'single', [9]],
      [8, 'a', [1, 2]],
      [8, 'é\u{1F642}', []],
      [8, 'c', [3]],
      [9, null, []],
    ]);
  });

  it('leaves a batch without envelopes as it is, and refuses a malformed envelope with CodecError', () => {
    const plain: CommittedEntry[] = [{ index: 1, kind: 'command', proposalId: 'p', data: bytes(1) }];
    expect(unwrapEnvelopes(plain)).toBe(plain);
    const envelope = wrapProposals('e2', [
      { id: 'a', data: bytes(1) },
      { id: 'b', data: bytes(2) },
    ]);
    const broken = (data: Uint8Array): CommittedEntry[] => [{ index: 1, kind: 'command', proposalId: envelope.id, data }];
    expect(() => unwrapEnvelopes(broken(envelope.data.subarray(0, envelope.data.length - 1)))).toThrow(CodecError);
    expect(() => unwrapEnvelopes(broken(Uint8Array.from([...envelope.data, 0])))).toThrow(/unexpected bytes/);
  });
});
