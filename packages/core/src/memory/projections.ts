import type { ProjectionRecord, ProjectionStore, ProjectionWrite } from '../backend.js';

type MutableRecord = { -readonly [K in keyof ProjectionRecord]: ProjectionRecord[K] };

/** Projection records of one in-memory database; every method is atomic (it runs synchronously). */
export class MemoryProjections implements ProjectionStore {
  readonly #records = new Map<string, MutableRecord>();

  async load(name: string): Promise<ProjectionRecord | undefined> {
    const record = this.#records.get(name);
    return record === undefined ? undefined : this.#view(record);
  }

  async claim(name: string, holder: string, leaseMs: number): Promise<{ held: boolean; record: ProjectionRecord }> {
    const record = this.#get(name);
    const now = Date.now();
    const held = record.holder === undefined || record.holder === holder || record.leaseUntil <= now;
    if (held) {
      record.holder = holder;
      record.leaseUntil = now + leaseMs;
    }
    return { held, record: this.#view(record) };
  }

  async save(
    name: string,
    holder: string,
    generation: number,
    update: { readonly checkpoint?: string; readonly lastError?: string | null },
    leaseMs: number,
  ): Promise<ProjectionWrite> {
    const record = this.#records.get(name);
    const now = Date.now();
    if (record === undefined || record.holder !== holder || record.leaseUntil <= now) return 'lost-lease';
    if (record.generation !== generation) return 'reset';
    if (update.checkpoint !== undefined) record.checkpoint = update.checkpoint;
    if (update.lastError !== undefined) record.lastError = update.lastError ?? undefined;
    record.leaseUntil = now + leaseMs;
    return 'ok';
  }

  async release(name: string, holder: string): Promise<void> {
    const record = this.#records.get(name);
    if (record?.holder !== holder) return;
    record.holder = undefined;
    record.leaseUntil = 0;
  }

  async reset(name: string, checkpoint: string | undefined): Promise<void> {
    const record = this.#get(name);
    record.checkpoint = checkpoint;
    record.lastError = undefined;
    record.generation++;
  }

  #get(name: string): MutableRecord {
    let record = this.#records.get(name);
    if (record === undefined) this.#records.set(name, (record = { name, leaseUntil: 0, generation: 0 }));
    return record;
  }

  #view(record: MutableRecord): ProjectionRecord {
    const expired = record.holder !== undefined && record.leaseUntil <= Date.now();
    return Object.freeze({ ...record, holder: expired ? undefined : record.holder, leaseUntil: expired ? 0 : record.leaseUntil });
  }
}
