import { describe, expect, it } from 'vitest';
import { StoreClosedError } from '@timebox/core';
import { ByteReader } from '../../src/bytes/byte-reader.js';
import { MaterializedState } from '../../src/state/materialized-state.js';
import type { CommittedEntry } from '../../src/node/ports.js';
import { append, entries, T0, tempStates } from './temp-state.js';

const states = tempStates();

/** Entries from `firstIndex` creating `count` aggregates named `${prefix}<n>`, each with a status and a label. */
function aggregates(firstIndex: number, prefix: string, count: number): CommittedEntry[] {
  return entries(
    firstIndex,
    Array.from({ length: count }, (_, n) =>
      append([prefix, `${n}`], 0, 2, { status: n % 2 === 0 ? 'open' : 'done', statusTime: T0 + n, labels: { region: `r${n % 5}` } }),
    ),
  );
}

/** The number of (key, value) pairs in an image. */
function pairCount(image: Uint8Array): number {
  const input = new ByteReader(image.subarray(4), (problem) => new Error(problem));
  let count = 0;
  while (!input.done) {
    input.bytes(); // the key
    input.bytes(); // the value
    count++;
  }
  return count;
}

describe('the chunked snapshot export', () => {
  it('gives the same bytes in many small steps as in the default ones, with the applied index', async () => {
    const state = states.open();
    await state.apply(aggregates(1, 'a', 50));
    const whole = await state.exportSnapshot();
    // Far more pairs than one step of three reads.
    expect(pairCount(whole)).toBeGreaterThan(100);
    const stepped = await state.exportImage({ chunkPairs: 3 });
    expect(stepped.index).toBe(50);
    expect(Buffer.from(stepped.data).equals(Buffer.from(whole))).toBe(true);
    const single = await state.exportImage({ chunkPairs: 1 });
    expect(Buffer.from(single.data).equals(Buffer.from(whole))).toBe(true);
  });

  it('leaves out what is applied while it runs: the image is the state at its index, and restores to exactly that', async () => {
    const first = aggregates(1, 'a', 2000);
    const later = aggregates(first.length + 1, 'b', 20);
    const state = states.open();
    await state.apply(first);
    let finished = false;
    // One pair per step: the export spans many turns of the event loop.
    const exporting = state.exportImage({ chunkPairs: 1 }).finally(() => {
      finished = true;
    });
    await state.apply(later);
    // The batch was applied, and is durable, while the export was still running.
    expect(finished).toBe(false);
    expect(state.appliedIndex()).toBe(first.length + later.length);
    const image = await exporting;
    expect(image.index).toBe(first.length);

    const reference = states.open();
    await reference.apply(first);
    const expected = await reference.exportSnapshot();
    expect(Buffer.from(image.data).equals(Buffer.from(expected))).toBe(true);

    const restored = states.open();
    await restored.restoreSnapshot(image.data, image.index);
    expect(restored.appliedIndex()).toBe(first.length);
    expect(restored.listAggregates(['b'], { limit: 10 })).toEqual({ items: [] });
    expect(Buffer.from(await restored.exportSnapshot()).equals(Buffer.from(expected))).toBe(true);
    // It goes on from there like the state it copies.
    await restored.apply(later);
    expect(Buffer.from(await restored.exportSnapshot()).equals(Buffer.from(await state.exportSnapshot()))).toBe(true);
  });

  it('an export cut short by close rejects with StoreClosedError, and the state closes and reopens', async () => {
    const dir = states.dir();
    const state = MaterializedState.open(dir);
    await state.apply(aggregates(1, 'a', 500));
    const exporting = state.exportImage({ chunkPairs: 1 });
    await state.close();
    await expect(exporting).rejects.toBeInstanceOf(StoreClosedError);
    await expect(state.exportImage()).rejects.toBeInstanceOf(StoreClosedError);
    const reopened = states.open({}, dir);
    expect(reopened.appliedIndex()).toBe(500);
    expect((await reopened.exportImage()).index).toBe(500);
  });

  it('an aborted export rejects with the reason; the state goes on applying and exporting', async () => {
    const state = states.open();
    await state.apply(aggregates(1, 'a', 500));
    const controller = new AbortController();
    const exporting = state.exportImage({ chunkPairs: 1, signal: controller.signal });
    const reason = new Error('stop');
    controller.abort(reason);
    await expect(exporting).rejects.toBe(reason);
    await state.apply(aggregates(501, 'b', 10));
    const image = await state.exportImage({ chunkPairs: 7 });
    expect(image.index).toBe(510);
    expect(Buffer.from(image.data).equals(Buffer.from(await state.exportSnapshot()))).toBe(true);
  });

  it('a finished export leaves nothing open: the state closes', async () => {
    const dir = states.dir();
    const state = MaterializedState.open(dir);
    await state.apply(aggregates(1, 'a', 100));
    await state.exportImage({ chunkPairs: 5 });
    await state.close();
    expect(state.closed).toBe(true);
    const reopened = states.open({}, dir);
    expect(reopened.appliedIndex()).toBe(100);
  });
});
