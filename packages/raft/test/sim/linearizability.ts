/**
 * A linearizability checker (Wing & Gong's search with Lowe's memoization) for the
 * per-aggregate append model: `append(expected, value)` succeeds iff `expected` equals the
 * aggregate's length; a read returns the aggregate's values. Operations whose outcome is unknown
 * (the client timed out) may take effect at any point after their call, or never.
 */

export type OperationInput = { readonly kind: 'append'; readonly expected: number; readonly value: string } | { readonly kind: 'read' };

export type OperationOutput =
  | { readonly kind: 'append-ok'; readonly sequence: number }
  | { readonly kind: 'append-conflict'; readonly actual: number }
  | { readonly kind: 'read'; readonly values: readonly string[] };

/** One client operation on one aggregate. `returnedAt`/`output` are null when the outcome is unknown. */
export interface Operation {
  readonly client: string;
  readonly aggregate: string;
  readonly calledAt: number;
  readonly returnedAt: number | null;
  readonly input: OperationInput;
  readonly output: OperationOutput | null;
}

export type LinearizabilityResult =
  | { readonly linearizable: true; readonly explored: number }
  | { readonly linearizable: false; readonly aggregate: string; readonly explored: number; readonly operations: readonly Operation[] }
  | { readonly linearizable: 'unknown'; readonly aggregate: string; readonly explored: number };

interface ModelState {
  readonly values: readonly string[];
  readonly hash: string;
}

const EMPTY_STATE: ModelState = { values: [], hash: '0' };

/** Every state the model can be in after `operation` runs on `state` and answers as recorded. */
function stepModel(state: ModelState, operation: Operation): ModelState[] {
  const { input, output } = operation;
  if (input.kind === 'read') {
    if (output === null) return [state];
    if (output.kind !== 'read' || output.values.length !== state.values.length) return [];
    return output.values.every((value, i) => value === state.values[i]) ? [state] : [];
  }
  const fits = state.values.length === input.expected;
  const appended = (): ModelState => ({ values: [...state.values, input.value], hash: `${state.hash}/${input.value}` });
  if (output === null) return fits ? [appended()] : [state];
  if (output.kind === 'append-ok') return fits && output.sequence === input.expected ? [appended()] : [];
  if (output.kind === 'append-conflict') return !fits && output.actual === state.values.length ? [state] : [];
  return [];
}

/** Checks one aggregate's history. `budget` caps the states explored. */
export function checkAggregate(operations: readonly Operation[], budget = 2_000_000): LinearizabilityResult {
  const aggregate = operations[0]?.aggregate ?? '';
  const ops = [...operations].sort((a, b) => a.calledAt - b.calledAt);
  const returnOf = ops.map((op) => op.returnedAt ?? Number.POSITIVE_INFINITY);
  const mustLinearize = ops.filter((op) => op.returnedAt !== null).length;
  const seen = new Set<string>();
  let explored = 0;
  let exhausted = false;

  const search = (done: bigint, doneCount: number, state: ModelState): boolean => {
    if (doneCount === mustLinearize) return true;
    if (explored++ > budget) {
      exhausted = true;
      return false;
    }
    const key = `${done.toString(36)}|${state.hash}`;
    if (seen.has(key)) return false;
    seen.add(key);
    // An operation may go next only if no pending operation returned before it was called.
    let earliestReturn = Number.POSITIVE_INFINITY;
    for (let i = 0; i < ops.length; i++) {
      if ((done & (1n << BigInt(i))) === 0n && returnOf[i]! < earliestReturn) earliestReturn = returnOf[i]!;
    }
    for (let i = 0; i < ops.length; i++) {
      const bit = 1n << BigInt(i);
      if ((done & bit) !== 0n) continue;
      const op = ops[i]!;
      if (op.calledAt > earliestReturn) break;
      const counted = op.returnedAt === null ? 0 : 1;
      for (const next of stepModel(state, op)) {
        if (search(done | bit, doneCount + counted, next)) return true;
        if (exhausted) return false;
      }
    }
    return false;
  };

  const ok = search(0n, 0, EMPTY_STATE);
  if (ok) return { linearizable: true, explored };
  if (exhausted) return { linearizable: 'unknown', aggregate, explored };
  return { linearizable: false, aggregate, explored, operations: ops };
}

/** Checks a whole history, aggregate by aggregate (linearizability is compositional). */
export function checkHistory(operations: readonly Operation[], budget?: number): LinearizabilityResult {
  const byAggregate = new Map<string, Operation[]>();
  for (const op of operations) {
    const list = byAggregate.get(op.aggregate) ?? [];
    list.push(op);
    byAggregate.set(op.aggregate, list);
  }
  let explored = 0;
  for (const list of byAggregate.values()) {
    const result = checkAggregate(list, budget);
    explored += result.explored;
    if (result.linearizable !== true) return result;
  }
  return { linearizable: true, explored };
}
