import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryLogStorage, type InitialState, type SnapshotConfiguration } from '../../../src/consensus/storage.js';
import type { Entry, HardState, Snapshot } from '../../../src/consensus/types.js';
import type { DurableLog, DurableWrite } from '../../../src/node/ports.js';

/**
 * A `DurableLog` over `MemoryLogStorage` for driver tests. Writes land in the storage only when
 * their "fsync" resolves, a little later, so proposals keep arriving while a save is under way.
 * The storage outlives the log: a new log over the same storage is a process restart.
 */
export class MemoryDurableLog implements DurableLog {
  saves = 0;
  snapshotsCreated = 0;
  compactions = 0;
  closed = false;
  /** The next save (or snapshot) rejects with this error, as a failing disk would. */
  failNext: Error | null = null;

  constructor(
    readonly storage: MemoryLogStorage = new MemoryLogStorage(),
    private readonly latencyMs = 1,
  ) {}

  initialState(): InitialState {
    return this.storage.initialState();
  }

  hardState(): HardState {
    return this.storage.hardState();
  }

  firstIndex(): number {
    return this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.storage.lastIndex();
  }

  term(index: number): number {
    return this.storage.term(index);
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.storage.entries(lo, hi, maxBytes);
  }

  snapshot(): Snapshot {
    return this.storage.snapshot();
  }

  async save(write: DurableWrite): Promise<void> {
    await this.sync();
    if (write.snapshot !== null) this.storage.applySnapshot(write.snapshot);
    this.storage.append(write.entries);
    if (write.hardState !== null) this.storage.setHardState(write.hardState);
    this.saves++;
  }

  async createSnapshot(index: number, voters: SnapshotConfiguration, data: Uint8Array): Promise<Snapshot> {
    await this.sync();
    this.snapshotsCreated++;
    return this.storage.createSnapshot(index, voters, data);
  }

  async compact(index: number): Promise<void> {
    await this.sync();
    this.storage.compact(index);
    this.compactions++;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private async sync(): Promise<void> {
    if (this.closed) throw new Error('the log is closed');
    await sleep(this.latencyMs);
    const failure = this.failNext;
    if (failure !== null) {
      this.failNext = null;
      throw failure;
    }
  }
}
