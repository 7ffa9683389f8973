import { InvalidArgumentError, type ProjectionRecord, type ProjectionStore, type ProjectionWrite } from '@timebox/core';
import type { Command, CommandResult } from './state/commands.js';
import { projectionNameProblem } from './state/limits.js';
import type { MaterializedState } from './state/materialized-state.js';

/** What the projection store needs from its backend: proposals, the read point, and the open check. */
export interface ProjectionHost {
  readonly state: MaterializedState;
  /** Proposes a command (after the backend's limit checks) and resolves with its result once applied here. */
  propose(command: Command): Promise<CommandResult>;
  /** Checks the backend is open and waits for the read point of its read mode. */
  readPoint(operation: string): Promise<void>;
  /** Throws `StoreClosedError` once the backend is closed. */
  assertOpen(operation: string): void;
  /** Turns an answer the operation does not expect into an error. */
  unexpected(operation: string, result: CommandResult): Error;
}

// A lone UTF-16 surrogate would come back as U+FFFD from the UTF-8 the state stores: two names
// or checkpoints would become one, so such strings are refused (core refuses them in IDs too).
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function assertText(name: string, value: unknown, nonEmpty: boolean): asserts value is string {
  if (typeof value !== 'string') throw new InvalidArgumentError(name, 'must be a string', value);
  if (nonEmpty && value === '') throw new InvalidArgumentError(name, 'must not be empty', value);
  if (LONE_SURROGATE.test(value))
    throw new InvalidArgumentError(name, 'holds a lone UTF-16 surrogate, which cannot be stored faithfully', value);
}

function assertGeneration(value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError('generation', 'must be a whole number ≥ 0', value);
  }
}

function assertLeaseMs(value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidArgumentError('leaseMs', 'must be a whole number > 0', value);
  }
}

/**
 * Projection records (core's `ProjectionStore`) in the replicated state. Every write is a replicated command,
 * applied in log order on every member, so each is atomic and conditional and all members agree on
 * its outcome. A lease is judged by the time the proposing member stamps into the command (its
 * clock, read once when the call is made), never by the clock of the member applying it, so the
 * apply step stays deterministic; members' clocks must agree to well within a lease. `load` is a
 * read like the backend's others (linearizable by default, or local) and judges expiry by this
 * member's clock.
 */
export class RaftProjections implements ProjectionStore {
  readonly #host: ProjectionHost;

  constructor(host: ProjectionHost) {
    this.#host = host;
  }

  async load(name: string): Promise<ProjectionRecord | undefined> {
    this.#host.assertOpen('read a projection');
    assertText('name', name, true);
    // A name too long to key can name no record; LMDB would throw a plain Error for it.
    const problem = projectionNameProblem(name);
    if (problem !== undefined) throw new InvalidArgumentError(problem.field, problem.rule, problem.value);
    await this.#host.readPoint('read a projection');
    return this.#host.state.loadProjection(name, Date.now());
  }

  async claim(name: string, holder: string, leaseMs: number): Promise<{ readonly held: boolean; readonly record: ProjectionRecord }> {
    this.#host.assertOpen('claim a projection');
    assertText('name', name, true);
    assertText('holder', holder, true);
    assertLeaseMs(leaseMs);
    const result = await this.#host.propose({ type: 'claim-projection', name, holder, at: Date.now(), leaseMs });
    if (result.type === 'claimed') return { held: result.held, record: result.record };
    throw this.#host.unexpected('claim a projection', result);
  }

  async save(
    name: string,
    holder: string,
    generation: number,
    update: { readonly checkpoint?: string; readonly lastError?: string | null },
    leaseMs: number,
  ): Promise<ProjectionWrite> {
    this.#host.assertOpen('save a projection');
    assertText('name', name, true);
    assertText('holder', holder, true);
    assertGeneration(generation);
    if (update === null || typeof update !== 'object') throw new InvalidArgumentError('update', 'must be an object', update);
    const { checkpoint, lastError } = update;
    if (checkpoint !== undefined) assertText('checkpoint', checkpoint, false);
    // The last error is a message for people: a lone surrogate in it is stored as U+FFFD.
    if (lastError !== undefined && lastError !== null && typeof lastError !== 'string') {
      throw new InvalidArgumentError('lastError', 'must be a string, null or absent', lastError);
    }
    assertLeaseMs(leaseMs);
    const result = await this.#host.propose({
      type: 'save-projection',
      name,
      holder,
      generation,
      checkpoint,
      lastError,
      at: Date.now(),
      leaseMs,
    });
    if (result.type === 'ok') return 'ok';
    if (result.type === 'lease-lost') return 'lost-lease';
    if (result.type === 'generation-changed') return 'reset';
    throw this.#host.unexpected('save a projection', result);
  }

  async release(name: string, holder: string): Promise<void> {
    this.#host.assertOpen('release a projection');
    assertText('name', name, true);
    assertText('holder', holder, true);
    const result = await this.#host.propose({ type: 'release-projection', name, holder });
    if (result.type !== 'ok') throw this.#host.unexpected('release a projection', result);
  }

  async reset(name: string, checkpoint: string | undefined): Promise<void> {
    this.#host.assertOpen('reset a projection');
    assertText('name', name, true);
    if (checkpoint !== undefined) assertText('checkpoint', checkpoint, false);
    const result = await this.#host.propose({ type: 'reset-projection', name, checkpoint });
    if (result.type !== 'ok') throw this.#host.unexpected('reset a projection', result);
  }
}
