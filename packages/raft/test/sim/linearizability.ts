/**
 * A linearizability checker (Wing & Gong's search with Lowe's memoization, iterative) for the
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

/**
 * A state of the model: the aggregate's values, as a chain of appends. States are interned — the
 * same values always get the same object — so a state compares and hashes by its `id`, and
 * appending costs O(1) however long the history.
 */
interface ModelState {
  readonly id: number;
  readonly length: number;
  readonly parent: ModelState | null;
  readonly value: string;
}

class States {
  readonly empty: ModelState = { id: 0, length: 0, parent: null, value: '' };
  readonly #children = new Map<string, ModelState>();

  /** `state` with `value` appended. */
  append(state: ModelState, value: string): ModelState {
    const key = `${state.id}/${value}`;
    let child = this.#children.get(key);
    if (child === undefined) {
      child = { id: this.#children.size + 1, length: state.length + 1, parent: state, value };
      this.#children.set(key, child);
    }
    return child;
  }

  /** The state holding exactly `values`, if the search ever built it (else no state can match). */
  find(values: readonly string[]): ModelState | undefined {
    let state: ModelState | undefined = this.empty;
    for (const value of values) {
      state = this.#children.get(`${state.id}/${value}`);
      if (state === undefined) return undefined;
    }
    return state;
  }
}

/** Every state the model can be in after `operation` runs on `state` and answers as recorded. */
function stepModel(states: States, state: ModelState, operation: Operation): ModelState[] {
  const { input, output } = operation;
  if (input.kind === 'read') {
    if (output === null) return [state];
    if (output.kind !== 'read' || output.values.length !== state.length) return [];
    return states.find(output.values) === state ? [state] : [];
  }
  const fits = state.length === input.expected;
  if (output === null) return fits ? [states.append(state, input.value)] : [state];
  if (output.kind === 'append-ok') return fits && output.sequence === input.expected ? [states.append(state, input.value)] : [];
  if (output.kind === 'append-conflict') return !fits && output.actual === state.length ? [state] : [];
  return [];
}

/**
 * Which operations are linearized: all before `first`, plus the few in `extra` (sorted, all
 * above `first`). Operations are sorted by call time and only a handful overlap, so this stays
 * small where a bit set would grow with the history.
 */
interface DoneSet {
  readonly first: number;
  readonly extra: readonly number[];
}

function isDone(done: DoneSet, i: number): boolean {
  return i < done.first || done.extra.includes(i);
}

function withDone(done: DoneSet, i: number): DoneSet {
  if (i !== done.first) return { first: done.first, extra: [...done.extra, i].sort((a, b) => a - b) };
  let first = i + 1;
  let k = 0;
  while (k < done.extra.length && done.extra[k] === first) {
    first++;
    k++;
  }
  return { first, extra: done.extra.slice(k) };
}

/** Checks one aggregate's history. `budget` caps the states explored. */
export function checkAggregate(operations: readonly Operation[], budget = 2_000_000): LinearizabilityResult {
  const aggregate = operations[0]?.aggregate ?? '';
  const ops = [...operations].sort((a, b) => a.calledAt - b.calledAt);
  const returnOf = ops.map((op) => op.returnedAt ?? Number.POSITIVE_INFINITY);
  // laterReturn[i]: the earliest return among operations i, i + 1, …
  const laterReturn = new Array<number>(ops.length + 1).fill(Number.POSITIVE_INFINITY);
  for (let i = ops.length - 1; i >= 0; i--) laterReturn[i] = Math.min(returnOf[i]!, laterReturn[i + 1]!);
  const mustLinearize = ops.filter((op) => op.returnedAt !== null).length;
  const states = new States();
  const seen = new Set<string>();
  let explored = 0;
  let exhausted = false;

  /** A node of the search: the operations linearized so far and the model state after them. */
  interface Frame {
    readonly done: DoneSet;
    readonly doneCount: number;
    readonly state: ModelState;
    /** Operations called after this time cannot go next (a pending one returned before). */
    readonly earliestReturn: number;
    /** The next operation to try; the one being tried is `tried`, its possible next states `nexts`. */
    i: number;
    tried: number;
    counted: number;
    nexts: ModelState[];
    k: number;
  }

  /** Enters a node: true when every completed operation is linearized, false to skip it, else its frame. */
  const enter = (done: DoneSet, doneCount: number, state: ModelState): Frame | boolean => {
    if (doneCount === mustLinearize) return true;
    if (explored++ > budget) {
      exhausted = true;
      return false;
    }
    const key = `${done.first}:${done.extra.join(',')}|${state.id}`;
    if (seen.has(key)) return false;
    seen.add(key);
    // An operation may go next only if no pending operation returned before it was called.
    const last = done.extra.length === 0 ? done.first - 1 : (done.extra[done.extra.length - 1] as number);
    let earliestReturn = laterReturn[last + 1] as number;
    for (let i = done.first; i <= last; i++) if (!done.extra.includes(i) && returnOf[i]! < earliestReturn) earliestReturn = returnOf[i]!;
    return { done, doneCount, state, earliestReturn, i: done.first, tried: -1, counted: 0, nexts: [], k: 0 };
  };

  // Depth-first, with an explicit stack: the search is as deep as the history is long, far deeper
  // than the call stack allows once an aggregate sees thousands of operations.
  const search = (): boolean => {
    const root = enter({ first: 0, extra: [] }, 0, states.empty);
    if (typeof root === 'boolean') return root;
    const stack: Frame[] = [root];
    while (stack.length > 0) {
      const frame = stack[stack.length - 1] as Frame;
      if (frame.k < frame.nexts.length) {
        const child = enter(withDone(frame.done, frame.tried), frame.doneCount + frame.counted, frame.nexts[frame.k++] as ModelState);
        if (child === true) return true;
        if (exhausted) return false;
        if (child !== false) stack.push(child);
        continue;
      }
      let next = false;
      while (frame.i < ops.length) {
        const i = frame.i++;
        if (isDone(frame.done, i)) continue;
        const op = ops[i]!;
        if (op.calledAt > frame.earliestReturn) {
          frame.i = ops.length;
          break;
        }
        frame.tried = i;
        frame.counted = op.returnedAt === null ? 0 : 1;
        frame.nexts = stepModel(states, frame.state, op);
        frame.k = 0;
        next = true;
        break;
      }
      if (!next) stack.pop();
    }
    return false;
  };

  const ok = search();
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
