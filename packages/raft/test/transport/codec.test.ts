import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Message } from '../../src/consensus/types.js';
import { ByteWriter } from '../../src/bytes/byte-writer.js';
import { decodeMessage, decodeOwnedMessage, encodeMessage, encodeMessageToBuffer } from '../../src/transport/codec.js';
import { CodecError, codecError } from '../../src/transport/errors.js';
import { FrameKind, FrameReader, beginFrame, endFrame } from '../../src/transport/frames.js';
import { message } from './arbitraries.js';

const MESSAGE_TYPES: readonly Message['type'][] = [
  'vote',
  'pre-vote',
  'vote-response',
  'pre-vote-response',
  'append',
  'append-response',
  'heartbeat',
  'heartbeat-response',
  'snapshot',
  'propose',
  'read-index',
  'read-index-response',
  'timeout-now',
];

function decodeError(run: () => unknown): CodecError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(CodecError);
    return error as CodecError;
  }
  throw new Error('expected a CodecError, but decoding succeeded');
}

describe('message codec', { timeout: 60_000 }, () => {
  it('round-trips every message exactly (fast-check)', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(message, (original) => {
        seen.add(original.type);
        const encoded = encodeMessageToBuffer(original);
        const decoded = decodeMessage(encoded);
        expect(decoded).toEqual(original);
        // Canonical: re-encoding the decoded message gives the same bytes.
        expect(encodeMessageToBuffer(decoded).equals(encoded)).toBe(true);
      }),
      { numRuns: 3000 },
    );
    expect([...seen].sort()).toEqual([...MESSAGE_TYPES].sort());
  });

  it('keeps the edge values: null vote/proposal/context, empty entries and data, unicode IDs', () => {
    const cases: Message[] = [
      { type: 'append', from: '節点🚀', to: 'узел', term: 0, prevIndex: 0, prevTerm: 0, entries: [], commit: 0 },
      {
        type: 'append',
        from: 'a',
        to: 'b',
        term: Number.MAX_SAFE_INTEGER,
        prevIndex: 2 ** 40,
        prevTerm: 127,
        entries: [
          { term: 1, index: 1, kind: 'empty', proposalId: null, data: new Uint8Array(0) },
          { term: 1, index: 2, kind: 'command', proposalId: null, data: new Uint8Array([0, 255]) },
          { term: 1, index: 3, kind: 'command', proposalId: '', data: new Uint8Array(0) },
          { term: 1, index: 4, kind: 'command', proposalId: 'lone \ud800 surrogate', data: new Uint8Array([1]) },
        ],
        commit: 128,
      },
      { type: 'heartbeat', from: 'a', to: 'b', term: 3, commit: 9, context: null },
      { type: 'heartbeat-response', from: 'a', to: 'b', term: 3, context: '' },
      { type: 'propose', from: 'a', to: 'b', term: 3, proposals: [] },
      { type: 'snapshot', from: 'a', to: 'b', term: 3, snapshot: { meta: { index: 5, term: 2, voters: [] }, data: new Uint8Array(0) } },
    ];
    for (const original of cases) expect(decodeMessage(encodeMessageToBuffer(original))).toEqual(original);
  });

  it('decodes data as views of a private copy when the frame is a view into a socket chunk', () => {
    const original: Message = {
      type: 'append',
      from: 'a',
      to: 'b',
      term: 1,
      prevIndex: 0,
      prevTerm: 0,
      commit: 0,
      entries: [{ term: 1, index: 1, kind: 'command', proposalId: 'p', data: new Uint8Array([1, 2, 3]) }],
    };
    const chunk = Buffer.concat([Buffer.alloc(10, 7), encodeMessageToBuffer(original), Buffer.alloc(10, 7)]);
    const frame = chunk.subarray(10, chunk.length - 10);
    const decoded = decodeOwnedMessage(frame, false);
    expect(decoded).toEqual(original);
    frame.fill(0); // the socket reuses its chunk: the decoded entry must not change
    expect(decoded).toEqual(original);
    if (decoded.type !== 'append') throw new Error('not an append');
    expect(decoded.entries[0]?.data.buffer).not.toBe(chunk.buffer);
  });

  it('rejects every truncation of a valid message with a clear CodecError', () => {
    fc.assert(
      fc.property(message, (original) => {
        const encoded = encodeMessageToBuffer(original);
        for (let length = 0; length < encoded.length; length++) {
          const error = decodeError(() => decodeMessage(encoded.subarray(0, length)));
          expect(error.message).toMatch(/truncated|does not fit/);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('rejects trailing bytes, unknown tags, bad booleans and entry flags', () => {
    const heartbeat = encodeMessageToBuffer({ type: 'heartbeat', from: 'a', to: 'b', term: 1, commit: 1, context: null });
    expect(decodeError(() => decodeMessage(Buffer.concat([heartbeat, Buffer.from([0])]))).message).toContain(
      'unexpected bytes after a heartbeat',
    );
    expect(decodeError(() => decodeMessage(Buffer.from([99, 0, 0, 0]))).message).toContain('unknown message type tag 99');
    const vote = encodeMessageToBuffer({ type: 'vote-response', from: 'a', to: 'b', term: 1, granted: true });
    vote[vote.length - 1] = 7;
    expect(decodeError(() => decodeMessage(vote)).message).toContain('granted must be 0 or 1');
    const append = encodeMessageToBuffer({
      type: 'append',
      from: 'a',
      to: 'b',
      term: 1,
      prevIndex: 0,
      prevTerm: 0,
      commit: 0,
      entries: [{ term: 1, index: 1, kind: 'empty', proposalId: null, data: new Uint8Array(0) }],
    });
    append[append.length - 2] = 0x40; // the entry's flags byte
    expect(decodeError(() => decodeMessage(append)).message).toContain('entry.flags has unknown bits');
    const overlong = Buffer.from([7, 2, 0x61, 2, 0x62, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    expect(decodeError(() => decodeMessage(overlong)).message).toContain('term');
  });

  it('never throws anything but CodecError on random garbage', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (garbage) => {
        try {
          decodeMessage(Buffer.from(garbage));
        } catch (error) {
          expect(error).toBeInstanceOf(CodecError);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('refuses to encode values the wire cannot carry', () => {
    const bad = { type: 'heartbeat', from: 'a', to: 'b', term: -1, commit: 0, context: null } as Message;
    expect(() => encodeMessageToBuffer(bad)).toThrow(/term must be a safe integer ≥ 0/);
    const fractional = {
      type: 'append-response',
      from: 'a',
      to: 'b',
      term: 1,
      index: 1.5,
      rejected: false,
      hintIndex: 0,
      hintTerm: 0,
    } as Message;
    expect(() => encodeMessageToBuffer(fractional)).toThrow(CodecError);
    expect(() => encodeMessageToBuffer({ type: 'bogus', from: 'a', to: 'b', term: 1 } as unknown as Message)).toThrow(
      /unknown message type/,
    );
  });
});

describe('FrameReader', { timeout: 60_000 }, () => {
  function frames(messages: readonly Message[]): Buffer {
    const writer = new ByteWriter(64, codecError);
    for (const each of messages) {
      const start = beginFrame(writer, FrameKind.message);
      encodeMessage(writer, each);
      endFrame(writer, start, 1 << 20);
    }
    return writer.take();
  }

  it('cuts frames out of a stream split at every possible place', () => {
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 8 }), (messages, cuts) => {
        const stream = frames(messages);
        const points = [...new Set(cuts.map((cut) => cut % (stream.length + 1)))].sort((a, b) => a - b);
        const reader = new FrameReader(1 << 20);
        const decoded: Message[] = [];
        let previous = 0;
        for (const point of [...points, stream.length]) {
          reader.push(stream.subarray(previous, point), (kind, body, owned) => {
            expect(kind).toBe(FrameKind.message);
            decoded.push(decodeOwnedMessage(body, owned));
          });
          previous = point;
        }
        expect(decoded).toEqual(messages);
        expect(reader.midFrame).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('feeds byte by byte', () => {
    const messages: Message[] = [
      { type: 'read-index', from: 'a', to: 'b', term: 1, context: 'x' },
      { type: 'read-index-response', from: 'b', to: 'a', term: 1, context: 'x', index: 300 },
    ];
    const stream = frames(messages);
    const reader = new FrameReader(1 << 20);
    const decoded: Message[] = [];
    for (let index = 0; index < stream.length; index++) {
      reader.push(stream.subarray(index, index + 1), (_kind, body, owned) => decoded.push(decodeOwnedMessage(body, owned)));
      if (index === 0) expect(reader.midFrame).toBe(true);
    }
    expect(decoded).toEqual(messages);
    expect(reader.midFrame).toBe(false);
  });

  it('rejects an oversized or empty frame length', () => {
    const reader = new FrameReader(1024);
    expect(() => reader.push(Buffer.from([0, 0, 4, 1, 2]), () => {})).toThrow(/frame length 1025 exceeds maxFrameBytes \(1024\)/);
    expect(() => new FrameReader(1024).push(Buffer.from([0, 0, 0, 0]), () => {})).toThrow(/empty frame/);
    expect(() => new FrameReader(1024).push(Buffer.from('GET / HTTP/1.1\r\n'), () => {})).toThrow(CodecError);
  });

  it('refuses to build a frame over maxFrameBytes', () => {
    const writer = new ByteWriter(64, codecError);
    const start = beginFrame(writer, FrameKind.message);
    writer.raw(new Uint8Array(2000));
    expect(() => endFrame(writer, start, 1024)).toThrow(/exceeds maxFrameBytes/);
  });
});
