import { checkHistory, type LinearizabilityResult, type Operation } from '../sim/linearizability.js';
import type { MemberState } from './member-state.js';
import type { HistoryLine } from './protocol.js';

/** Counts of a run, for the report. */
export interface RunStats {
  readonly calls: number;
  readonly ok: number;
  readonly conflict: number;
  /** Answered with an error (a timeout, a closed store): the append may or may not have committed. */
  readonly error: number;
  /** The errors by name (`RaftUnavailableError` …). */
  readonly errors: Readonly<Record<string, number>>;
  /** No answer line: the process was killed while the append was in flight. */
  readonly unanswered: number;
  /** Errors and unanswered appends that turned out stored. */
  readonly indeterminateStored: number;
  readonly storedEvents: number;
  readonly appliedIndex: number;
}

export interface RunVerdict {
  /** Violations of durability, exactly-once, agreement or gap-freedom; empty when the run is sound. */
  readonly problems: string[];
  readonly linearizability: LinearizabilityResult;
  readonly stats: RunStats;
}

interface Call {
  readonly op: string;
  readonly client: string;
  readonly aggregate: string;
  readonly expected: number;
  readonly at: number;
  answer?: Exclude<HistoryLine, { t: 'call' }>;
}

const MAX_LISTED = 20;

/**
 * Checks a crash run: every member's state against the others (same applied index, same bytes),
 * every stored event against the history (exactly once, at the sequence its writer was told,
 * never one answered with a conflict, never one nobody proposed), and the whole history for
 * linearizability against the per-aggregate append model, ending with a read of the final state.
 *
 * Errors and missing answers are indeterminate. Payload IDs are unique and nothing deletes
 * events here, so an indeterminate append whose ID is stored nowhere never took effect and is
 * left out of the linearizability check (it could only be placed as "never happened").
 */
export function checkRun(states: readonly MemberState[], lines: readonly HistoryLine[], endedAt: number): RunVerdict {
  const problems: string[] = [];
  const calls = new Map<string, Call>();
  for (const line of lines) {
    if (line.t === 'call') {
      if (calls.has(line.op)) problems.push(`payload ID ${line.op} was proposed twice`);
      calls.set(line.op, { op: line.op, client: line.client, aggregate: line.aggregate, expected: line.expected, at: line.at });
    }
  }
  for (const line of lines) {
    if (line.t === 'call') continue;
    const call = calls.get(line.op);
    if (call === undefined) problems.push(`answer without a call: ${JSON.stringify(line)}`);
    else if (call.answer !== undefined) problems.push(`${line.op} answered twice`);
    else call.answer = line;
  }

  for (const state of states) problems.push(...state.problems);
  const [first, ...others] = states;
  if (first === undefined) throw new Error('no member states to check');
  for (const other of others) {
    if (other.applied !== first.applied) problems.push(`${other.id} applied index ${other.applied}, ${first.id} ${first.applied}`);
    if (!sameBytes(other.image, first.image))
      problems.push(
        `${other.id}'s state image (${other.image.length} bytes) differs from ${first.id}'s (${first.image.length} bytes) ${describeDifference(first, other)}`,
      );
  }

  // Where every stored payload ID sits, per member; duplicates and strangers are problems.
  for (const state of states) {
    const where = new Map<string, { aggregate: string; sequence: number }>();
    for (const [aggregate, ops] of state.aggregates) {
      for (const [sequence, op] of ops.entries()) {
        const earlier = where.get(op);
        if (earlier !== undefined)
          problems.push(`${state.id}: ${op} stored twice, ${earlier.aggregate}@${earlier.sequence} and ${aggregate}@${sequence}`);
        where.set(op, { aggregate, sequence });
        const call = calls.get(op);
        if (call === undefined) problems.push(`${state.id}: ${aggregate}@${sequence} holds ${op}, which nobody proposed`);
        else if (call.aggregate !== aggregate) problems.push(`${state.id}: ${op} stored in ${aggregate}, proposed to ${call.aggregate}`);
        else if (call.answer?.t === 'conflict')
          problems.push(`${state.id}: ${op} stored at ${sequence} although its writer was told "conflict"`);
        else if (call.answer?.t === 'ok' && call.expected !== sequence)
          problems.push(`${state.id}: ${op} stored at ${sequence}, its writer was told ${call.expected}`);
      }
    }
    for (const call of calls.values()) {
      if (call.answer?.t === 'ok' && !where.has(call.op))
        problems.push(`${state.id}: acknowledged ${call.op} (${call.aggregate}@${call.expected}) is missing`);
    }
  }

  const stored = new Set<string>();
  for (const ops of first.aggregates.values()) for (const op of ops) stored.add(op);
  const operations: Operation[] = [];
  let indeterminateStored = 0;
  for (const call of calls.values()) {
    const answer = call.answer;
    const base = {
      client: call.client,
      aggregate: call.aggregate,
      calledAt: call.at,
      input: { kind: 'append', expected: call.expected, value: call.op },
    } as const;
    if (answer?.t === 'ok') operations.push({ ...base, returnedAt: answer.at, output: { kind: 'append-ok', sequence: call.expected } });
    else if (answer?.t === 'conflict')
      operations.push({ ...base, returnedAt: answer.at, output: { kind: 'append-conflict', actual: answer.actual } });
    else if (stored.has(call.op)) {
      indeterminateStored++;
      operations.push({ ...base, returnedAt: null, output: null });
    }
  }
  // The final state, read after every writer stopped, closes each aggregate's history.
  for (const [aggregate, ops] of first.aggregates) {
    operations.push({
      client: 'final-read',
      aggregate,
      calledAt: endedAt,
      returnedAt: endedAt + 1,
      input: { kind: 'read' },
      output: { kind: 'read', values: ops },
    });
  }

  const answers = [...calls.values()].map((call) => call.answer?.t ?? 'none');
  const count = (t: string) => answers.filter((a) => a === t).length;
  const errors: Record<string, number> = {};
  for (const call of calls.values()) {
    if (call.answer?.t !== 'error') continue;
    const name = call.answer.error.split(':')[0] as string;
    errors[name] = (errors[name] ?? 0) + 1;
  }
  return {
    problems: problems.length > MAX_LISTED ? [...problems.slice(0, MAX_LISTED), `… and ${problems.length - MAX_LISTED} more`] : problems,
    linearizability: checkHistory(operations),
    stats: {
      calls: calls.size,
      ok: count('ok'),
      conflict: count('conflict'),
      error: count('error'),
      errors,
      unanswered: count('none'),
      indeterminateStored,
      storedEvents: stored.size,
      appliedIndex: first.applied,
    },
  };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return (
    a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))
  );
}

/** Names the aggregates whose stored IDs differ, to point at what the images disagree on. */
function describeDifference(a: MemberState, b: MemberState): string {
  const keys = new Set([...a.aggregates.keys(), ...b.aggregates.keys()]);
  const differing = [...keys].filter((key) => (a.aggregates.get(key) ?? []).join(',') !== (b.aggregates.get(key) ?? []).join(','));
  return differing.length === 0
    ? '(same events; the difference is elsewhere: snapshots, index or proposal table)'
    : `(events differ in ${differing.join(', ')})`;
}
