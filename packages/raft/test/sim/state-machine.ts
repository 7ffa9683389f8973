import type { Entry } from '../../src/consensus/types.js';

/** A command of the per-aggregate append model: append `value` iff the log has `expected` values. */
export interface AppendCommand {
  readonly aggregate: string;
  readonly expected: number;
  readonly value: string;
}

/** What applying an append command produced, remembered per proposal ID so retries see the same answer. */
export type AppendResult = { readonly ok: true; readonly sequence: number } | { readonly ok: false; readonly actual: number };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(command: AppendCommand): Uint8Array {
  return encoder.encode(JSON.stringify(command));
}

function decodeCommand(data: Uint8Array): AppendCommand {
  return JSON.parse(decoder.decode(data)) as AppendCommand;
}

/** FNV-1a over a string, continuing from `hash`. */
export function fnv1a(text: string, hash = 0x811c9dc5): number {
  let h = hash;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** A stable fingerprint of an entry's content (not its position). */
export function entryFingerprint(entry: Entry): string {
  return `${entry.kind}|${entry.proposalId ?? ''}|${fnv1a(decoder.decode(entry.data))}`;
}

interface SnapshotImage {
  readonly aggregates: [string, string[]][];
  readonly results: [string, AppendResult][];
  readonly applied: number;
  readonly chain: number;
}

/**
 * The replicated state machine of the simulation: per-aggregate value logs with the
 * optimistic-concurrency check done at apply time, and a table of applied proposal IDs so a
 * proposal that reached the log twice is applied once. `chain` hashes every applied entry in
 * order, so two nodes at one index can be compared cheaply.
 */
export class AggregateStateMachine {
  readonly aggregates = new Map<string, string[]>();
  readonly results = new Map<string, AppendResult>();
  applied = 0;
  chain = 0;

  apply(entry: Entry): void {
    if (entry.index !== this.applied + 1) throw new Error(`state machine at ${this.applied} was given entry ${entry.index}`);
    this.applied = entry.index;
    this.chain = fnv1a(`${entry.index}:${entry.term}:${entryFingerprint(entry)}`, this.chain);
    if (entry.kind !== 'command' || entry.proposalId === null || this.results.has(entry.proposalId)) return;
    const command = decodeCommand(entry.data);
    const values = this.aggregates.get(command.aggregate) ?? [];
    if (command.expected === values.length) {
      values.push(command.value);
      this.aggregates.set(command.aggregate, values);
      this.results.set(entry.proposalId, { ok: true, sequence: command.expected });
    } else {
      this.results.set(entry.proposalId, { ok: false, actual: values.length });
    }
  }

  read(aggregate: string): readonly string[] {
    return [...(this.aggregates.get(aggregate) ?? [])];
  }

  snapshot(): Uint8Array {
    const image: SnapshotImage = {
      aggregates: [...this.aggregates].map(([key, values]) => [key, [...values]]),
      results: [...this.results],
      applied: this.applied,
      chain: this.chain,
    };
    return encoder.encode(JSON.stringify(image));
  }

  static restore(data: Uint8Array): AggregateStateMachine {
    const machine = new AggregateStateMachine();
    if (data.byteLength === 0) return machine;
    const image = JSON.parse(decoder.decode(data)) as SnapshotImage;
    for (const [key, values] of image.aggregates) machine.aggregates.set(key, values);
    for (const [id, result] of image.results) machine.results.set(id, result);
    machine.applied = image.applied;
    machine.chain = image.chain;
    return machine;
  }
}
