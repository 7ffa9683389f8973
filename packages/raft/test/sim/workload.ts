import { LeadershipTransferInProgressError, NoLeaderError, ProposalDroppedError } from '../../src/consensus/errors.js';
import type { Entry, ReadState } from '../../src/consensus/types.js';
import type { RaftNode } from '../../src/consensus/raft.js';
import type { SeededRandom } from '../../src/consensus/random.js';
import type { Operation, OperationInput, OperationOutput } from './linearizability.js';
import { encodeCommand, type AggregateStateMachine } from './state-machine.js';

/** What a client needs from the simulated cluster. */
export interface ClusterAccess {
  now(): number;
  nodeIds(): readonly string[];
  /** The node's consensus core and state machine, or null when it is down or paused. */
  reachable(id: string): { raft: RaftNode; machine: AggregateStateMachine; incarnation: number } | null;
  incarnation(id: string): number;
  afterInput(id: string): void;
  schedule(delay: number, action: () => void): void;
}

interface PendingOperation {
  readonly id: string;
  readonly input: OperationInput;
  readonly aggregate: string;
  readonly calledAt: number;
  attempt: number;
  node: string | null;
  incarnation: number;
  readContext: string | null;
  readIndex: number | null;
}

const ATTEMPT_TIMEOUT_MS = 400;

/**
 * Clients that append to and read from a few aggregates through random nodes, retrying with the
 * same proposal ID when an attempt times out, and recording every call and answer as a history
 * for the linearizability checker.
 */
export class Workload {
  readonly history: Operation[] = [];
  private readonly pending = new Map<string, PendingOperation>();
  private readonly knownLength = new Map<string, number>();
  private issuing = true;
  private counter = 0;
  abandoned = 0;
  completed = 0;

  constructor(
    private readonly cluster: ClusterAccess,
    private readonly random: SeededRandom,
    private readonly clients: readonly string[],
    private readonly aggregates: readonly string[],
  ) {}

  start(): void {
    for (const client of this.clients) this.cluster.schedule(this.random.nextInt(20), () => this.next(client));
  }

  /** Stop starting new operations (pending ones keep retrying until they complete). */
  stopIssuing(): void {
    this.issuing = false;
  }

  pendingCount(): number {
    return this.pending.size;
  }

  private next(client: string): void {
    if (!this.issuing || this.pending.has(client)) return;
    const aggregate = this.aggregates[this.random.nextInt(this.aggregates.length)]!;
    const id = `${client}-${++this.counter}`;
    let input: OperationInput;
    if (this.random.chance(0.3)) {
      input = { kind: 'read' };
    } else {
      const known = this.knownLength.get(aggregate) ?? 0;
      const expected = this.random.chance(0.2) ? Math.max(0, known + this.random.nextInt(3) - 1) : known;
      input = { kind: 'append', expected, value: id };
    }
    this.pending.set(client, {
      id,
      input,
      aggregate,
      calledAt: this.cluster.now(),
      attempt: 0,
      node: null,
      incarnation: -1,
      readContext: null,
      readIndex: null,
    });
    this.attempt(client);
  }

  private attempt(client: string): void {
    const op = this.pending.get(client);
    if (op === undefined) return;
    op.attempt++;
    op.node = null;
    op.readIndex = null;
    const ids = this.cluster.nodeIds();
    const nodeId = ids[this.random.nextInt(ids.length)]!;
    const node = this.cluster.reachable(nodeId);
    const attempt = op.attempt;
    if (node === null) {
      // Connection refused: nothing was submitted, try elsewhere shortly.
      this.cluster.schedule(10, () => this.retryIfStill(client, attempt));
      return;
    }
    try {
      if (op.input.kind === 'append') {
        const known = node.machine.results.get(op.id);
        if (known !== undefined) {
          this.complete(
            client,
            known.ok ? { kind: 'append-ok', sequence: known.sequence } : { kind: 'append-conflict', actual: known.actual },
          );
          return;
        }
        node.raft.propose(op.id, encodeCommand({ aggregate: op.aggregate, expected: op.input.expected, value: op.input.value }));
      } else {
        op.readContext = `${op.id}#${attempt}`;
        node.raft.readIndex(op.readContext);
      }
    } catch (error) {
      if (error instanceof NoLeaderError || error instanceof ProposalDroppedError || error instanceof LeadershipTransferInProgressError) {
        this.cluster.schedule(20, () => this.retryIfStill(client, attempt));
        return;
      }
      throw error;
    }
    op.node = nodeId;
    op.incarnation = node.incarnation;
    this.cluster.afterInput(nodeId);
    this.cluster.schedule(ATTEMPT_TIMEOUT_MS, () => this.timeout(client, attempt));
  }

  private retryIfStill(client: string, attempt: number): void {
    const op = this.pending.get(client);
    if (op !== undefined && op.attempt === attempt) this.attempt(client);
  }

  private timeout(client: string, attempt: number): void {
    const op = this.pending.get(client);
    if (op === undefined || op.attempt !== attempt) return;
    if (this.issuing && op.attempt >= 3 && this.random.chance(0.1)) {
      // The client gives up: an append's outcome is now unknown; a read simply never happened.
      this.pending.delete(client);
      this.abandoned++;
      if (op.input.kind === 'append') {
        this.history.push({ client, aggregate: op.aggregate, calledAt: op.calledAt, returnedAt: null, input: op.input, output: null });
      }
      this.cluster.schedule(this.random.nextInt(20), () => this.next(client));
      return;
    }
    this.attempt(client);
  }

  /** A node applied an entry: answer the client whose proposal it was, if it waits on that node. */
  onApplied(nodeId: string, entry: Entry, machine: AggregateStateMachine, incarnation: number): void {
    if (entry.proposalId === null) return;
    const client = entry.proposalId.slice(0, entry.proposalId.lastIndexOf('-'));
    const op = this.pending.get(client);
    if (op === undefined || op.id !== entry.proposalId || op.node !== nodeId || op.incarnation !== incarnation) return;
    const result = machine.results.get(op.id);
    if (result === undefined) return;
    this.complete(
      client,
      result.ok ? { kind: 'append-ok', sequence: result.sequence } : { kind: 'append-conflict', actual: result.actual },
    );
  }

  onReadState(nodeId: string, state: ReadState, incarnation: number): void {
    for (const op of this.pending.values()) {
      if (op.readContext === state.context && op.node === nodeId && op.incarnation === incarnation) op.readIndex = state.index;
    }
  }

  /** A node applied more: serve the reads waiting on it. */
  onAppliedUpTo(nodeId: string, machine: AggregateStateMachine, incarnation: number): void {
    for (const [client, op] of this.pending) {
      if (op.node !== nodeId || op.incarnation !== incarnation || op.readIndex === null || machine.applied < op.readIndex) continue;
      this.complete(client, { kind: 'read', values: machine.read(op.aggregate) });
    }
  }

  private complete(client: string, output: OperationOutput): void {
    const op = this.pending.get(client);
    if (op === undefined) return;
    this.pending.delete(client);
    this.completed++;
    this.history.push({ client, aggregate: op.aggregate, calledAt: op.calledAt, returnedAt: this.cluster.now(), input: op.input, output });
    if (output.kind === 'read') this.knownLength.set(op.aggregate, output.values.length);
    else if (output.kind === 'append-ok') this.knownLength.set(op.aggregate, output.sequence + 1);
    else this.knownLength.set(op.aggregate, output.actual);
    this.cluster.schedule(this.random.nextInt(20), () => this.next(client));
  }
}
