import { describe, expect, it } from 'vitest';
import { checkAggregate, checkHistory, type Operation, type OperationOutput } from '../sim/linearizability.js';

function append(
  client: string,
  calledAt: number,
  returnedAt: number | null,
  expected: number,
  value: string,
  output: OperationOutput | null,
  aggregate = 'a',
): Operation {
  return { client, aggregate, calledAt, returnedAt, input: { kind: 'append', expected, value }, output };
}
function read(client: string, calledAt: number, returnedAt: number, values: string[], aggregate = 'a'): Operation {
  return { client, aggregate, calledAt, returnedAt, input: { kind: 'read' }, output: { kind: 'read', values } };
}
const ok = (sequence: number): OperationOutput => ({ kind: 'append-ok', sequence });
const conflict = (actual: number): OperationOutput => ({ kind: 'append-conflict', actual });

describe('linearizability checker for the per-aggregate append model', () => {
  it('accepts a sequential history', () => {
    const history = [append('c1', 0, 1, 0, 'x', ok(0)), append('c1', 2, 3, 1, 'y', ok(1)), read('c1', 4, 5, ['x', 'y'])];
    expect(checkAggregate(history).linearizable).toBe(true);
  });

  it('accepts concurrent appends at one expected length when exactly one wins', () => {
    const history = [append('c1', 0, 10, 0, 'x', ok(0)), append('c2', 1, 9, 0, 'y', conflict(1)), read('c3', 11, 12, ['x'])];
    expect(checkAggregate(history).linearizable).toBe(true);
  });

  it('rejects two winners at one sequence', () => {
    const history = [append('c1', 0, 10, 0, 'x', ok(0)), append('c2', 1, 9, 0, 'y', ok(0))];
    expect(checkAggregate(history).linearizable).toBe(false);
  });

  it('rejects a stale read after a completed append (real-time order matters)', () => {
    const history = [append('c1', 0, 1, 0, 'x', ok(0)), read('c2', 2, 3, [])];
    expect(checkAggregate(history).linearizable).toBe(false);
  });

  it('accepts the same read when it overlaps the append', () => {
    const history = [append('c1', 0, 5, 0, 'x', ok(0)), read('c2', 2, 3, [])];
    expect(checkAggregate(history).linearizable).toBe(true);
  });

  it('rejects reads that see an append and then not', () => {
    const history = [append('c1', 0, 10, 0, 'x', ok(0)), read('c2', 1, 2, ['x']), read('c2', 3, 4, [])];
    expect(checkAggregate(history).linearizable).toBe(false);
  });

  it('rejects a conflict that reports the wrong length', () => {
    const history = [append('c1', 0, 1, 0, 'x', ok(0)), append('c2', 2, 3, 0, 'y', conflict(2))];
    expect(checkAggregate(history).linearizable).toBe(false);
  });

  it('lets a timed-out append take effect later, or never', () => {
    const tookEffect = [append('c1', 0, null, 0, 'x', null), read('c2', 5, 6, []), read('c2', 7, 8, ['x'])];
    expect(checkAggregate(tookEffect).linearizable).toBe(true);
    const never = [append('c1', 0, null, 0, 'x', null), append('c2', 5, 6, 0, 'y', ok(0))];
    expect(checkAggregate(never).linearizable).toBe(true);
  });

  it('does not let a timed-out append take effect before it was called', () => {
    const history = [read('c2', 0, 1, ['x']), append('c1', 2, null, 0, 'x', null)];
    expect(checkAggregate(history).linearizable).toBe(false);
  });

  it('does not let a timed-out append apply when its expected length no longer fits', () => {
    const history = [append('c1', 0, 1, 0, 'a', ok(0)), append('c2', 2, null, 0, 'x', null), read('c3', 5, 6, ['a', 'x'])];
    expect(checkAggregate(history).linearizable).toBe(false);
  });

  it('checks aggregates independently', () => {
    const history = [append('c1', 0, 1, 0, 'x', ok(0), 'a'), append('c2', 0, 1, 0, 'y', ok(0), 'b'), read('c3', 2, 3, ['y'], 'b')];
    expect(checkHistory(history).linearizable).toBe(true);
    const broken = [...history, read('c3', 4, 5, [], 'a')];
    const result = checkHistory(broken);
    expect(result.linearizable).toBe(false);
    expect(result.linearizable === false && result.aggregate).toBe('a');
  });

  it('handles a long concurrent history quickly', () => {
    const history: Operation[] = [];
    let length = 0;
    for (let i = 0; i < 150; i++) {
      const winner = `w${i}`;
      history.push(append(`c${i % 3}`, i * 10, i * 10 + 8, length, winner, ok(length)));
      history.push(append(`c${(i + 1) % 3}`, i * 10 + 1, i * 10 + 9, length, `l${i}`, conflict(length + 1)));
      length++;
    }
    expect(checkAggregate(history).linearizable).toBe(true);
  });

  it('checks a history far deeper than the call stack (thousands of operations on one aggregate)', () => {
    const history: Operation[] = [];
    for (let i = 0; i < 6_000; i++) {
      history.push(append(`c${i % 4}`, i * 10, i * 10 + 8, i, `v${i}`, ok(i)));
      history.push(append(`c${(i + 1) % 4}`, i * 10 + 1, i * 10 + 7, i, `x${i}`, conflict(i + 1)));
    }
    expect(checkAggregate(history).linearizable).toBe(true);
    // And still finds the one bad answer at its end.
    history.push(read('r', 1_000_000, 1_000_001, ['v0']));
    expect(checkAggregate(history).linearizable).toBe(false);
  });

  it('reports "unknown" rather than guessing when the search budget runs out', () => {
    const history: Operation[] = [];
    for (let i = 0; i < 12; i++) history.push(append(`c${i}`, 0, null, i % 3, `v${i}`, null));
    history.push(read('r', 1, 2, ['nope']));
    expect(checkAggregate(history, 50).linearizable).toBe('unknown');
  });
});
