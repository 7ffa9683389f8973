import type { ProjectionRecord, ProjectionStore, ProjectionWrite } from '@timebox/core';
import { guard } from './errors.js';
import type { KeySpace } from './key-space.js';
import type { ProjectionReply, Scripts } from './scripts.js';

/**
 * Projection records in the store's namespace, one hash per name (`B:pr:<name>`). Every write is
 * one Lua script, so it is atomic and conditional; lease ends are computed and judged with the
 * server's `TIME`, so processes whose clocks disagree still agree on who holds a lease.
 */
export class RedisProjections implements ProjectionStore {
  readonly #scripts: Scripts;
  readonly #keys: KeySpace;
  readonly #assertOpen: (operation: string) => void;

  /** @param assertOpen - throws `StoreClosedError` once the backend is closed */
  constructor(scripts: Scripts, keys: KeySpace, assertOpen: (operation: string) => void) {
    this.#scripts = scripts;
    this.#keys = keys;
    this.#assertOpen = assertOpen;
  }

  async load(name: string): Promise<ProjectionRecord | undefined> {
    this.#assertOpen('read a projection');
    const reply = await guard('read a projection', () => this.#scripts.projectionLoad(this.#keys.projection(name)));
    return reply === null ? undefined : toRecord(name, reply);
  }

  async claim(name: string, holder: string, leaseMs: number): Promise<{ held: boolean; record: ProjectionRecord }> {
    this.#assertOpen('claim a projection');
    const [held, reply] = await guard('claim a projection', () =>
      this.#scripts.projectionClaim(this.#keys.projection(name), holder, Math.ceil(leaseMs)),
    );
    return { held: held === 1, record: toRecord(name, reply) };
  }

  async save(
    name: string,
    holder: string,
    generation: number,
    update: { readonly checkpoint?: string; readonly lastError?: string | null },
    leaseMs: number,
  ): Promise<ProjectionWrite> {
    this.#assertOpen('save a projection');
    return guard('save a projection', () =>
      this.#scripts.projectionSave(
        this.#keys.projection(name),
        holder,
        generation,
        update.checkpoint,
        update.lastError,
        Math.ceil(leaseMs),
      ),
    );
  }

  async release(name: string, holder: string): Promise<void> {
    this.#assertOpen('release a projection');
    await guard('release a projection', () => this.#scripts.projectionRelease(this.#keys.projection(name), holder));
  }

  async reset(name: string, checkpoint: string | undefined): Promise<void> {
    this.#assertOpen('reset a projection');
    await guard('reset a projection', () => this.#scripts.projectionReset(this.#keys.projection(name), checkpoint));
  }
}

function toRecord(name: string, [generation, holder, leaseUntil, checkpoint, error]: ProjectionReply): ProjectionRecord {
  return Object.freeze({
    name,
    checkpoint: checkpoint ?? undefined,
    holder: holder ?? undefined,
    leaseUntil: Number(leaseUntil),
    generation: Number(generation),
    lastError: error ?? undefined,
  });
}
