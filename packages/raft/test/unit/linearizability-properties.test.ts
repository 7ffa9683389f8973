import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkAggregate, type Operation } from '../sim/linearizability.js';

/** Runs a command list against the model one at a time, recording a history with real answers. */
function sequentialHistory(commands: readonly { read: boolean; expectedOffset: number }[], overlap: number): Operation[] {
  const values: string[] = [];
  return commands.map((command, i) => {
    const calledAt = i * 10;
    // With overlap > 0 neighbouring operations run concurrently; the sequential order stays a valid linearization.
    const returnedAt = calledAt + 5 + overlap;
    if (command.read) {
      return {
        client: `c${i}`,
        aggregate: 'a',
        calledAt,
        returnedAt,
        input: { kind: 'read' },
        output: { kind: 'read', values: [...values] },
      };
    }
    const expected = Math.max(0, values.length + command.expectedOffset);
    const value = `v${i}`;
    if (expected === values.length) {
      values.push(value);
      return {
        client: `c${i}`,
        aggregate: 'a',
        calledAt,
        returnedAt,
        input: { kind: 'append', expected, value },
        output: { kind: 'append-ok', sequence: expected },
      };
    }
    return {
      client: `c${i}`,
      aggregate: 'a',
      calledAt,
      returnedAt,
      input: { kind: 'append', expected, value },
      output: { kind: 'append-conflict', actual: values.length },
    };
  });
}

const commandsArb = fc.array(fc.record({ read: fc.boolean(), expectedOffset: fc.integer({ min: -1, max: 1 }) }), {
  minLength: 1,
  maxLength: 25,
});

describe('linearizability checker properties', () => {
  it('every history produced by running the model sequentially is linearizable, with or without overlap', () => {
    fc.assert(
      fc.property(commandsArb, fc.integer({ min: 0, max: 30 }), (commands, overlap) => {
        expect(checkAggregate(sequentialHistory(commands, overlap)).linearizable).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('a non-overlapping history whose read answer was tampered with is not linearizable', () => {
    fc.assert(
      fc.property(commandsArb, (commands) => {
        const history = sequentialHistory([...commands, { read: false, expectedOffset: 0 }, { read: true, expectedOffset: 0 }], 0);
        const last = history[history.length - 1]!;
        if (last.output?.kind !== 'read') throw new Error('expected a read');
        const tampered: Operation = { ...last, output: { kind: 'read', values: last.output.values.slice(1) } };
        expect(checkAggregate([...history.slice(0, -1), tampered]).linearizable).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});
