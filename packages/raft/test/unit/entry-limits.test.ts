import { ConfigError } from '@timebox/core';
import { describe, expect, it } from 'vitest';
import { RAFT_DEFAULTS } from '../../src/consensus/config.js';
import { DEFAULT_MAX_ENTRY_BYTES, MAX_MAX_ENTRY_BYTES, resolveMaxEntryBytes, transportLimitsFor } from '../../src/entry-limits.js';
import { encodeMessage } from '../../src/transport/codec.js';
import { beginFrame, endFrame, FrameKind } from '../../src/transport/frames.js';
import { ByteWriter } from '../../src/bytes/byte-writer.js';
import { codecError } from '../../src/transport/errors.js';
import type { Entry, Message } from '../../src/consensus/types.js';
import { TRANSPORT_DEFAULTS } from '../../src/transport/options.js';

/** The frame the transport would build for `message`, checked against `maxFrameBytes` as a link does. */
function frameBytes(message: Message, maxFrameBytes: number): number {
  const writer = new ByteWriter(1024, codecError);
  const start = beginFrame(writer, FrameKind.message);
  encodeMessage(writer, message);
  return endFrame(writer, start, maxFrameBytes);
}

const PROPOSAL_ID = 'AAAAAAAAAAAAAAAAAAAAAAAA:0000000000';

function entry(index: number, dataBytes: number): Entry {
  return { term: 2 ** 40, index, kind: 'command', proposalId: PROPOSAL_ID, data: new Uint8Array(dataBytes) };
}

function append(entries: Entry[]): Message {
  return {
    type: 'append',
    from: 'member-a',
    to: 'member-b',
    term: 2 ** 40,
    prevIndex: 2 ** 45,
    prevTerm: 2 ** 40,
    entries,
    commit: 2 ** 45,
  };
}

describe('entry and frame limits', () => {
  it('keeps the default frame limit for the default entry limit, with a queue for two frames', () => {
    const limits = transportLimitsFor(DEFAULT_MAX_ENTRY_BYTES, RAFT_DEFAULTS.maxMessageBytes);
    expect(limits.maxFrameBytes).toBe(TRANSPORT_DEFAULTS.maxFrameBytes);
    expect(limits.maxQueueBytes).toBeGreaterThanOrEqual(2 * limits.maxFrameBytes);
  });

  it.each([64 << 10, 8 << 20, 20 << 20])(
    'an append carrying one entry of maxEntryBytes = %i fits a frame under the derived limit',
    (maxEntryBytes) => {
      const { maxFrameBytes, maxQueueBytes } = transportLimitsFor(maxEntryBytes, RAFT_DEFAULTS.maxMessageBytes);
      expect(frameBytes(append([entry(2 ** 45, maxEntryBytes)]), maxFrameBytes)).toBeLessThanOrEqual(maxFrameBytes);
      expect(maxQueueBytes).toBeGreaterThanOrEqual(2 * maxFrameBytes);
    },
  );

  it('an append of maxMessageBytes of the smallest entries fits a frame too (their headers are covered)', () => {
    // Above the default frame limit, the derived one is the budget plus a fixed headroom.
    const headroom = transportLimitsFor(64 << 10, 32 << 20).maxFrameBytes - (32 << 20);
    expect(headroom).toBeGreaterThan(0);
    const maxMessageBytes = 1 << 20;
    // entryBytes charges each empty-data entry 24 bytes plus its proposal ID: as many as fit the budget.
    const count = Math.floor(maxMessageBytes / (24 + PROPOSAL_ID.length));
    const entries = Array.from({ length: count }, (_, i) => entry(2 ** 45 + i, 0));
    expect(frameBytes(append(entries), TRANSPORT_DEFAULTS.maxFrameBytes)).toBeLessThanOrEqual(maxMessageBytes + headroom);
  });

  it('resolves maxEntryBytes with its default and refuses values outside its range with ConfigError', () => {
    expect(resolveMaxEntryBytes(undefined)).toBe(DEFAULT_MAX_ENTRY_BYTES);
    expect(resolveMaxEntryBytes(1 << 20)).toBe(1 << 20);
    for (const bad of [0, -1, 1.5, '1', 1023, MAX_MAX_ENTRY_BYTES + 1]) {
      expect(() => resolveMaxEntryBytes(bad)).toThrow(ConfigError);
    }
    expect(() => resolveMaxEntryBytes(1023)).toThrow(/maxEntryBytes must be an integer from 65536 to 268435456/);
  });
});
