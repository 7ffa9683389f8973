import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeCommand, encodeCommand, type Command } from '../../src/state/commands.js';
import { DecodeError } from '../../src/state/errors.js';
import { decodeResult, encodeResult, type CommandResult } from '../../src/state/commands.js';

const commands: Command[] = [
  {
    type: 'append',
    id: ['order', 'a:1', '', '\u0000\u{1F642}'],
    expectedSequence: 7,
    events: [
      { type: 'Created', sequence: 7, timestamp: -1234, data: '{"x":"ü"}' },
      { type: 'Noted', sequence: 8, timestamp: 1_700_000_000_123, data: '"plain"' },
    ],
    index: { status: 'open', statusTime: 1_700_000_000_123, labels: { region: 'west', gone: '', __proto__x: 'p' } },
  },
  { type: 'append', id: ['x'], expectedSequence: 0, events: [], index: undefined },
  {
    type: 'append',
    id: ['x'],
    expectedSequence: 3,
    events: [{ type: 'A', sequence: 3, timestamp: 0, data: '1' }],
    index: { statusTime: 5, labels: { a: 'b' } },
  },
  { type: 'save-snapshot', id: ['s', 'nap'], data: '{"total":3}', sequence: 3, trim: true },
  { type: 'save-snapshot', id: ['s'], data: '{}', sequence: 0, trim: false },
  { type: 'archive', id: ['gone', 'x'] },
  { type: 'lease', consumer: 'c-1', at: 1_700_000_000_000, leaseMs: 30_000 },
  { type: 'renew', record: 12, lease: 3, consumer: 'c-1', at: 1_700_000_000_500, leaseMs: 200 },
  { type: 'ack', record: 2 ** 40, lease: 1, consumer: 'c-2' },
  { type: 'release', record: 1, lease: 99, consumer: '' },
  { type: 'open-log', logId: '0b6f1f3e-6c2d-4a59-9d0e-1a2b3c4d5e6f' },
  { type: 'claim-projection', name: 'orders\u0000view', holder: 'runner-1', at: 1_700_000_000_000, leaseMs: 15_000 },
  {
    type: 'save-projection',
    name: 'p',
    holder: 'h',
    generation: 3,
    checkpoint: '1.abc.17.def',
    lastError: 'boom',
    at: 1_700_000_000_001,
    leaseMs: 1,
  },
  { type: 'save-projection', name: 'p', holder: 'h', generation: 0, checkpoint: undefined, lastError: null, at: -5, leaseMs: 9 },
  { type: 'save-projection', name: 'p', holder: 'h', generation: 0, checkpoint: '', lastError: undefined, at: 0, leaseMs: 9 },
  { type: 'release-projection', name: 'p', holder: 'h' },
  { type: 'reset-projection', name: 'p', checkpoint: undefined },
  { type: 'reset-projection', name: 'p', checkpoint: '1.abc.0.def' },
];

describe('command codec', () => {
  it('round-trips every command kind exactly', () => {
    for (const command of commands) expect(decodeCommand(encodeCommand(command))).toEqual(command);
  });

  it('keeps a label named __proto__ as plain data', () => {
    const labels = JSON.parse('{"__proto__":"v"}') as Record<string, string>;
    const decoded = decodeCommand(
      encodeCommand({
        type: 'append',
        id: ['a'],
        expectedSequence: 0,
        events: [{ type: 'A', sequence: 0, timestamp: 0, data: '1' }],
        index: { statusTime: 0, labels },
      }),
    );
    expect(decoded.type === 'append' && Object.entries(decoded.index!.labels)).toEqual([['__proto__', 'v']]);
    expect(Object.getPrototypeOf(decoded.type === 'append' ? decoded.index!.labels : null)).toBe(Object.prototype);
  });

  it('is compact: a one-event append is a few bytes beyond its strings', () => {
    const bytes = encodeCommand({
      type: 'append',
      id: ['order', '1'],
      expectedSequence: 5,
      events: [{ type: 'A', sequence: 5, timestamp: 0, data: '{}' }],
    });
    expect(bytes.length).toBeLessThan(2 + 1 + 6 + 2 + 1 + 1 + 2 + 8 + 3 + 1 + 1);
  });

  it('rejects truncated, trailing, unknown and malformed bytes with DecodeError', () => {
    const good = encodeCommand(commands[0]!);
    for (let cut = 0; cut < good.length; cut++) expect(() => decodeCommand(good.subarray(0, cut))).toThrow(DecodeError);
    expect(() => decodeCommand(Uint8Array.from([...good, 0]))).toThrow(DecodeError);
    expect(() => decodeCommand(Uint8Array.from([2, 1]))).toThrow(/version/);
    expect(() => decodeCommand(Uint8Array.from([1, 99]))).toThrow(/tag/);
    expect(() => decodeCommand(Uint8Array.from([1, 3, 0]))).toThrow(/at least one part/);
    expect(() => decodeCommand(Uint8Array.from([1, 3, 1, 2, 0xc3, 0x28]))).toThrow(/UTF-8/);
    const nan = encodeCommand({ type: 'lease', consumer: 'c', at: 1, leaseMs: 1 });
    new DataView(nan.buffer).setFloat64(nan.length - 9, Number.NaN);
    expect(() => decodeCommand(nan)).toThrow(/finite/);
  });

  it('decoding any bytes either yields a command or throws DecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 1, max: 12 }), (tail, tag) => {
        for (const bytes of [tail, Uint8Array.from([1, tag, ...tail])]) {
          try {
            const command = decodeCommand(bytes);
            expect(decodeCommand(encodeCommand(command))).toEqual(command);
          } catch (error) {
            expect(error).toBeInstanceOf(DecodeError);
          }
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('round-trips every result kind', () => {
    const results: CommandResult[] = [
      { type: 'ok' },
      { type: 'conflict', actualSequence: 4, newEvents: [{ type: 'A', sequence: 2, timestamp: 5, data: '{}', position: 9 }] },
      { type: 'appended', firstPosition: 2 ** 40, count: 3 },
      { type: 'claimed', held: true, record: { name: 'p', leaseUntil: 1_700_000_000_200, generation: 2, holder: 'h', checkpoint: 'c' } },
      { type: 'claimed', held: false, record: { name: 'p', leaseUntil: 0, generation: 0, lastError: 'boom' } },
      { type: 'generation-changed' },
      { type: 'conflict', actualSequence: 0, newEvents: [] },
      { type: 'invalid-sequence', nextSequence: 2 },
      { type: 'leased', record: 3, lease: 2, expiresAt: 1_700_000_000_200 },
      { type: 'nothing-available', earliestExpiry: null },
      { type: 'nothing-available', earliestExpiry: 17 },
      { type: 'lease-lost' },
      { type: 'invalid-command', reason: 'nope' },
    ];
    for (const result of results) expect(decodeResult(encodeResult(result))).toEqual(result);
  });
});
