import { describe, expect, it } from 'vitest';
import { checkRun } from './check-run.js';
import type { MemberState } from './member-state.js';
import type { HistoryLine } from './protocol.js';

/** The crash tests' verdict must be able to fail: each of these hand-made runs breaks one rule. */
const A = '["crash","0"]';

function member(id: string, ops: readonly string[], image = ops.join(','), applied = 10): MemberState {
  return { id, applied, image: new TextEncoder().encode(image), aggregates: new Map([[A, ops]]), problems: [] };
}

function three(ops: readonly string[]): MemberState[] {
  return ['n1', 'n2', 'n3'].map((id) => member(id, ops));
}

const call = (op: string, expected: number, at: number): HistoryLine => ({
  t: 'call',
  op,
  client: op.split('.')[0] as string,
  aggregate: A,
  expected,
  at,
});
const ok = (op: string, at: number): HistoryLine => ({ t: 'ok', op, at });
const conflict = (op: string, actual: number, at: number): HistoryLine => ({ t: 'conflict', op, actual, at });

// a.0 wins sequence 0; b.0 conflicts at 0 (actual 1) and b.1 retries at 1 and wins; c.0 is killed in flight.
const history: HistoryLine[] = [
  call('a.0', 0, 1),
  call('b.0', 0, 2),
  ok('a.0', 5),
  conflict('b.0', 1, 6),
  call('b.1', 1, 7),
  ok('b.1', 9),
  call('c.0', 2, 10),
];

describe('checkRun', () => {
  it('passes a sound run, with an in-flight append that committed and one that did not', () => {
    const stored = checkRun(three(['a.0', 'b.1', 'c.0']), history, 100);
    expect(stored.problems).toEqual([]);
    expect(stored.linearizability.linearizable).toBe(true);
    expect(stored.stats).toMatchObject({ calls: 4, ok: 2, conflict: 1, unanswered: 1, indeterminateStored: 1, storedEvents: 3 });
    const lost = checkRun(three(['a.0', 'b.1']), history, 100);
    expect(lost.problems).toEqual([]);
    expect(lost.linearizability.linearizable).toBe(true);
  });

  it('flags an acknowledged append missing on one member', () => {
    const states = [member('n1', ['a.0', 'b.1']), member('n2', ['a.0', 'b.1']), member('n3', ['a.0'], 'a.0,b.1')];
    expect(checkRun(states, history, 100).problems).toContain('n3: acknowledged b.1 (["crash","0"]@1) is missing');
  });

  it('flags an append stored twice, one stored although answered "conflict", one stored at another sequence, and a stranger', () => {
    expect(checkRun(three(['a.0', 'b.1', 'b.1']), history, 100).problems.join('\n')).toMatch(/b\.1 stored twice/);
    expect(checkRun(three(['a.0', 'b.0', 'b.1']), history, 100).problems.join('\n')).toMatch(
      /b\.0 stored at 1 although its writer was told "conflict"/,
    );
    expect(checkRun(three(['b.1', 'a.0']), history, 100).problems.join('\n')).toMatch(/a\.0 stored at 1, its writer was told 0/);
    expect(checkRun(three(['a.0', 'b.1', 'x.9']), history, 100).problems.join('\n')).toMatch(/holds x\.9, which nobody proposed/);
  });

  it('flags members that differ in applied index or state bytes', () => {
    const states = [member('n1', ['a.0', 'b.1']), member('n2', ['a.0', 'b.1'], 'other bytes'), member('n3', ['a.0', 'b.1'], 'a.0,b.1', 11)];
    const problems = checkRun(states, history, 100).problems.join('\n');
    expect(problems).toMatch(/n2's state image .* differs from n1's/);
    expect(problems).toMatch(/n3 applied index 11, n1 10/);
  });

  it('finds a non-linearizable history: a conflict reporting a length the aggregate had already left behind', () => {
    // a.0 was acknowledged at 5; b.0, called later, is told the aggregate is still empty.
    const stale: HistoryLine[] = [call('a.0', 0, 1), ok('a.0', 5), call('b.0', 1, 20), conflict('b.0', 0, 25)];
    const verdict = checkRun(three(['a.0']), stale, 100);
    expect(verdict.problems).toEqual([]);
    expect(verdict.linearizability.linearizable).toBe(false);
  });

  it('finds a non-linearizable history: the final state disagrees with the acknowledged order', () => {
    // Both acknowledged, a.0 before b.0 was called, yet the store holds b.0 first (sequences as told would be violated too).
    const order: HistoryLine[] = [call('a.0', 0, 1), ok('a.0', 5), call('b.0', 0, 10), ok('b.0', 12)];
    expect(checkRun(three(['a.0', 'b.0']), order, 100).linearizability.linearizable).toBe(false);
  });
});
