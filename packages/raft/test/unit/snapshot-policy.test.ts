import { describe, expect, it } from 'vitest';
import { MemoryLogStorage } from '../../src/consensus/storage.js';
import { SnapshotPolicy } from '../../src/node/snapshot-policy.js';
import type { CommittedEntry, StateImage, StateMachine } from '../../src/node/ports.js';
import { MemoryDurableLog } from '../node/support/memory-durable-log.js';
import type { Configuration } from '../../src/consensus/membership.js';

const oneVoter = (): Configuration => ({ voters: ['n1'], learners: [], addresses: {} });

/** A state whose image is `imageBytes` long, at whatever index it was told it applied. */
class SizedState implements StateMachine<unknown> {
  applied = 0;
  constructor(public imageBytes: number) {}
  appliedIndex(): number {
    return this.applied;
  }
  async apply(): Promise<ReadonlyMap<string, unknown>> {
    return new Map();
  }
  async exportImage(): Promise<StateImage> {
    return { index: this.applied, data: new Uint8Array(this.imageBytes) };
  }
  async restoreSnapshot(): Promise<void> {}
}

/** Entries `from`..`to` with `bytes` of command each, appended to the log and counted as applied. */
async function applyEntries(
  log: MemoryDurableLog,
  state: SizedState,
  policy: SnapshotPolicy,
  from: number,
  to: number,
  bytes: number,
): Promise<void> {
  const entries = [];
  for (let index = from; index <= to; index++)
    entries.push({ index, term: 1, kind: 'command' as const, proposalId: `p${index}`, data: new Uint8Array(bytes) });
  await log.save({ snapshot: null, entries, hardState: { term: 1, vote: null, commit: to } });
  state.applied = to;
  policy.applied(entries satisfies CommittedEntry[]);
}

describe('SnapshotPolicy', () => {
  it('snapshots after `every` entries, then only once the commands applied since add up to the last image', async () => {
    const log = new MemoryDurableLog(new MemoryLogStorage(), 0);
    const state = new SizedState(1_000);
    const policy = new SnapshotPolicy(log, state, oneVoter, 10, 2);

    await applyEntries(log, state, policy, 1, 9, 10);
    expect(policy.due()).toBe(false);
    await applyEntries(log, state, policy, 10, 10, 10);
    // No image yet: the count alone decides the first.
    expect(await policy.maybeSnapshot()).toBe(10);
    expect(log.storage.firstIndex()).toBe(9);

    // 50 entries of 10 bytes: the count rule holds, but 500 bytes < the 1000-byte image.
    await applyEntries(log, state, policy, 11, 60, 10);
    expect(policy.due()).toBe(false);
    expect(await policy.maybeSnapshot()).toBeNull();
    await applyEntries(log, state, policy, 61, 110, 10);
    expect(policy.due()).toBe(true);
    expect(await policy.maybeSnapshot()).toBe(110);
    expect(log.snapshotsCreated).toBe(2);

    // Large commands: the byte rule holds at once, the count rule still waits for 10 entries.
    await applyEntries(log, state, policy, 111, 115, 5_000);
    expect(policy.due()).toBe(false);
    await applyEntries(log, state, policy, 116, 120, 5_000);
    expect(await policy.maybeSnapshot()).toBe(120);
  });

  it('counts from a snapshot installed from the leader, by its size', async () => {
    const log = new MemoryDurableLog(new MemoryLogStorage(), 0);
    const state = new SizedState(100);
    const policy = new SnapshotPolicy(log, state, oneVoter, 5, 0);
    policy.installed(50, 2_000);
    state.applied = 50;
    expect(policy.snapshotIndex).toBe(50);
    await log.save({
      snapshot: { meta: { index: 50, term: 1, voters: ['n1'] }, data: new Uint8Array(2_000) },
      entries: [],
      hardState: null,
    });
    await applyEntries(log, state, policy, 51, 60, 100);
    expect(policy.due()).toBe(false);
    await applyEntries(log, state, policy, 61, 70, 100);
    expect(policy.due()).toBe(true);
  });

  it('after a restart, counts the entries applied since the snapshot and their bytes, read back from the log', async () => {
    const log = new MemoryDurableLog(new MemoryLogStorage(), 0);
    const state = new SizedState(1_000);
    const before = new SnapshotPolicy(log, state, oneVoter, 10, 0);
    await applyEntries(log, state, before, 1, 10, 10);
    expect(await before.maybeSnapshot()).toBe(10);
    // 60 entries of 10 bytes since the 1000-byte image: not due yet.
    await applyEntries(log, state, before, 11, 70, 10);
    expect(before.due()).toBe(false);

    // The process restarts: the new policy picks up the 600 bytes instead of starting from zero…
    const restarted = new SnapshotPolicy(log, state, oneVoter, 10, 0);
    expect(restarted.due()).toBe(false);
    // …so 40 more entries (not another 100) make it due, as they would have without the restart.
    await applyEntries(log, state, restarted, 71, 109, 10);
    expect(restarted.due()).toBe(false);
    await applyEntries(log, state, restarted, 110, 110, 10);
    expect(restarted.due()).toBe(true);

    // Restarting once the bytes are there: due at once.
    expect(new SnapshotPolicy(log, state, oneVoter, 10, 0).due()).toBe(true);
  });

  it('exports in the background: the image names its own index, entries applied meanwhile count toward the next', async () => {
    const log = new MemoryDurableLog(new MemoryLogStorage(), 0);
    const state = new GatedState();
    const policy = new SnapshotPolicy(log, state, oneVoter, 10, 0);
    await applyEntries(log, state, policy, 1, 10, 10);
    let exported = 0;
    const failures: unknown[] = [];
    const startExport = () =>
      policy.startExportIfDue(
        () => exported++,
        (error) => failures.push(error),
      );
    expect(startExport()).toBe(true);
    // One export at a time.
    expect(startExport()).toBe(false);
    // Entries applied while the image is being read are not in it: it is the state at 10.
    await applyEntries(log, state, policy, 11, 15, 10);
    state.release();
    await waitFor(() => exported === 1);
    expect(await policy.writeExported()).toBe(10);
    expect(log.snapshot().meta.index).toBe(10);
    expect(await policy.writeExported()).toBeNull();
    // The five entries applied meanwhile were kept in the count: five more make it due.
    expect(policy.due()).toBe(false);
    await applyEntries(log, state, policy, 16, 20, 10);
    expect(policy.due()).toBe(true);
    expect(failures).toEqual([]);
  });

  it('drops an image a snapshot from the leader covers, and stop abandons the export under way', async () => {
    const log = new MemoryDurableLog(new MemoryLogStorage(), 0);
    const state = new GatedState();
    const policy = new SnapshotPolicy(log, state, oneVoter, 10, 0);
    await applyEntries(log, state, policy, 1, 10, 10);
    let exported = 0;
    policy.startExportIfDue(
      () => exported++,
      () => undefined,
    );
    policy.installed(12, 100);
    state.release();
    await waitFor(() => exported === 1);
    expect(await policy.writeExported()).toBeNull();
    expect(log.snapshotsCreated).toBe(0);

    await applyEntries(log, state, policy, 11, 30, 10);
    const failures: unknown[] = [];
    const startExport = () =>
      policy.startExportIfDue(
        () => exported++,
        (error) => failures.push(error),
      );
    expect(startExport()).toBe(true);
    await policy.stop();
    expect(state.aborted).toBe(true);
    expect(failures).toEqual([]);
    expect(
      policy.startExportIfDue(
        () => exported++,
        () => undefined,
      ),
    ).toBe(false);
    expect(exported).toBe(1);
  });
});

/** A state whose export reads its index at once and resolves only when released (or aborted). */
class GatedState extends SizedState {
  aborted = false;
  readonly #waiting: (() => void)[] = [];
  constructor() {
    super(100);
  }
  release(): void {
    for (const resolve of this.#waiting.splice(0)) resolve();
  }
  override async exportImage(options?: { readonly signal?: AbortSignal | undefined }): Promise<StateImage> {
    const index = this.applied;
    await new Promise<void>((resolve, reject) => {
      this.#waiting.push(resolve);
      options?.signal?.addEventListener('abort', () => {
        this.aborted = true;
        reject(options.signal?.reason as Error);
      });
    });
    return { index, data: new Uint8Array(this.imageBytes) };
  }
}

/** Resolves once `condition` holds, checking on a timer; fails after a generous deadline. */
async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
