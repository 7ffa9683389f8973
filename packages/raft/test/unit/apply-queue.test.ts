import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { ApplyQueue, type ApplyDeferral } from '../../src/node/apply-queue.js';
import type { CommittedEntry, StateImage, StateMachine } from '../../src/node/ports.js';

/** A state machine that records each apply call's indexes. */
class RecordingState implements StateMachine<number> {
  applied = 0;
  readonly calls: number[][] = [];
  appliedIndex(): number {
    return this.applied;
  }
  async apply(entries: readonly CommittedEntry[]): Promise<ReadonlyMap<string, number>> {
    await sleep(1);
    this.calls.push(entries.map((entry) => entry.index));
    this.applied = (entries.at(-1) as CommittedEntry).index;
    return new Map(entries.map((entry) => [entry.proposalId as string, entry.index]));
  }
  async exportImage(): Promise<StateImage> {
    return { index: this.applied, data: new Uint8Array(0) };
  }
  async restoreSnapshot(): Promise<void> {}
}

function entries(from: number, to: number): CommittedEntry[] {
  const out: CommittedEntry[] = [];
  for (let index = from; index <= to; index++) out.push({ index, kind: 'command', proposalId: `p${index}`, data: new Uint8Array(0) });
  return out;
}

function queue(deferral?: Partial<ApplyDeferral> & { urgent?: () => boolean }) {
  const state = new RecordingState();
  const applied: number[] = [];
  const applier = new ApplyQueue<number>(
    state,
    {
      onDecided: () => undefined,
      onApplied: (_entries, _results, index) => applied.push(index),
      onFatal: (error) => {
        throw error;
      },
    },
    10_000,
    deferral === undefined
      ? undefined
      : { urgent: deferral.urgent ?? (() => false), maxDelayMs: deferral.maxDelayMs ?? 50, maxEntries: deferral.maxEntries ?? 100 },
  );
  return { state, applied, applier };
}

describe('ApplyQueue', () => {
  it('reports a batch decided once — early when the state says so, else when it is applied — and always before applied', async () => {
    const events: string[] = [];
    /** Hands its results out (twice) before its "commit". */
    class EarlyState extends RecordingState {
      override async apply(
        entries: readonly CommittedEntry[],
        onDecided?: (results: ReadonlyMap<string, number>) => void,
      ): Promise<ReadonlyMap<string, number>> {
        const results = new Map(entries.map((entry) => [entry.proposalId as string, entry.index]));
        onDecided?.(results);
        onDecided?.(results);
        return super.apply(entries);
      }
    }
    for (const state of [new EarlyState(), new RecordingState()]) {
      const applier = new ApplyQueue<number>(
        state,
        {
          onDecided: (entries) => events.push(`decided ${entries.length}`),
          onApplied: (_entries, _results, index) => events.push(`applied ${index}`),
          onFatal: (error) => {
            throw error;
          },
        },
        10_000,
      );
      applier.push(entries(1, 3));
      await applier.whenIdle();
    }
    expect(events).toEqual(['decided 3', 'applied 3', 'decided 3', 'applied 3']);
  });

  it('without a deferral applies at once, and groups what arrives meanwhile into the next call', async () => {
    const { state, applier } = queue();
    applier.push(entries(1, 2));
    applier.push(entries(3, 3));
    applier.push(entries(4, 6));
    await applier.whenIdle();
    expect(state.calls).toEqual([
      [1, 2],
      [3, 4, 5, 6],
    ]);
  });

  it('while nothing is urgent, puts applying off for maxDelayMs, then applies all that waited in one call', async () => {
    const { state, applier } = queue({ maxDelayMs: 40 });
    applier.push(entries(1, 3));
    await sleep(10);
    applier.push(entries(4, 5));
    await sleep(10);
    expect(state.calls).toEqual([]);
    await sleep(60);
    expect(state.calls).toEqual([[1, 2, 3, 4, 5]]);
  });

  it('applies at once when maxEntries wait, when something is urgent, or when asked to go idle', async () => {
    let urgent = false;
    const { state, applier } = queue({ maxDelayMs: 10_000, maxEntries: 5, urgent: () => urgent });
    applier.push(entries(1, 5));
    await sleep(20);
    expect(state.calls).toEqual([[1, 2, 3, 4, 5]]);

    applier.push(entries(6, 6));
    await sleep(20);
    applier.hurryIfUrgent();
    await sleep(20);
    expect(state.calls).toHaveLength(1);
    urgent = true;
    applier.hurryIfUrgent();
    await sleep(20);
    expect(state.calls).toEqual([[1, 2, 3, 4, 5], [6]]);

    urgent = false;
    applier.push(entries(7, 8));
    await applier.whenIdle();
    expect(state.calls.at(-1)).toEqual([7, 8]);
    expect(state.applied).toBe(8);
  });

  it('an urgent push is applied at once, and entries waiting behind a running apply follow it', async () => {
    let urgent = true;
    const { state, applier } = queue({ maxDelayMs: 10_000, urgent: () => urgent });
    applier.push(entries(1, 1));
    applier.push(entries(2, 2));
    await sleep(30);
    expect(state.calls).toEqual([[1], [2]]);
    urgent = false;
    applier.push(entries(3, 3));
    await sleep(30);
    expect(state.calls).toHaveLength(2);
    await applier.whenIdle();
    expect(state.calls).toEqual([[1], [2], [3]]);
  });
});
