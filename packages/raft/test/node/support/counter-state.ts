import { setImmediate as yieldTurn } from 'node:timers/promises';
import type { CommittedEntry, StateImage, StateMachine } from '../../../src/node/ports.js';

/** A command: add `by` to the counter `key`. */
export interface CounterCommand {
  readonly key: string;
  readonly by: number;
}

/** The result of a command: the counter's value right after it, and the index it was applied at. */
export interface CounterResult {
  readonly value: number;
  readonly index: number;
}

interface Image {
  readonly applied: number;
  readonly counters: [string, number][];
  readonly results: [string, CounterResult][];
  readonly order: string[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(command: CounterCommand): Uint8Array {
  return encoder.encode(JSON.stringify(command));
}

/**
 * A tiny deterministic state machine: named counters. Each proposal ID is applied once (a
 * duplicate entry gets the remembered result back), `order` lists the IDs in apply order, and
 * snapshots are JSON. It "lives on disk" in the sense that it outlives a `RaftServer`.
 */
export class CounterStateMachine implements StateMachine<CounterResult> {
  private applied = 0;
  readonly counters = new Map<string, number>();
  readonly results = new Map<string, CounterResult>();
  readonly order: string[] = [];
  /** Entries whose proposal ID had already been applied. */
  duplicates = 0;
  restores = 0;
  /** The next apply rejects with this error. */
  failNext: Error | null = null;

  appliedIndex(): number {
    return this.applied;
  }

  async apply(entries: readonly CommittedEntry[]): Promise<ReadonlyMap<string, CounterResult>> {
    await yieldTurn();
    const failure = this.failNext;
    if (failure !== null) {
      this.failNext = null;
      throw failure;
    }
    const out = new Map<string, CounterResult>();
    let previous: number | null = null;
    for (const entry of entries) {
      // The proposals of one envelope entry share its index.
      if (entry.index !== this.applied + 1 && entry.index !== previous)
        throw new Error(`counter state at ${this.applied} was given entry ${entry.index}`);
      previous = entry.index;
      this.applied = entry.index;
      const id = entry.proposalId;
      if (entry.kind !== 'command' || id === null) continue;
      const known = this.results.get(id);
      if (known !== undefined) {
        this.duplicates++;
        out.set(id, known);
        continue;
      }
      const command = JSON.parse(decoder.decode(entry.data)) as CounterCommand;
      const value = (this.counters.get(command.key) ?? 0) + command.by;
      this.counters.set(command.key, value);
      const result = { value, index: entry.index };
      this.results.set(id, result);
      this.order.push(id);
      out.set(id, result);
    }
    return out;
  }

  async exportImage(): Promise<StateImage> {
    await yieldTurn();
    // Read in one synchronous step: a consistent image at the index it names, whatever was applied before.
    const image: Image = { applied: this.applied, counters: [...this.counters], results: [...this.results], order: [...this.order] };
    return { index: image.applied, data: encoder.encode(JSON.stringify(image)) };
  }

  async restoreSnapshot(data: Uint8Array, index: number): Promise<void> {
    await yieldTurn();
    const image = JSON.parse(decoder.decode(data)) as Image;
    if (image.applied !== index) throw new Error(`snapshot image at ${image.applied} restored as index ${index}`);
    this.applied = image.applied;
    this.counters.clear();
    for (const [key, value] of image.counters) this.counters.set(key, value);
    this.results.clear();
    for (const [id, result] of image.results) this.results.set(id, result);
    this.order.length = 0;
    this.order.push(...image.order);
    this.restores++;
  }

  /** A comparable view of the whole state. */
  fingerprint(): string {
    return JSON.stringify({ applied: this.applied, counters: [...this.counters].sort(), order: this.order });
  }
}
