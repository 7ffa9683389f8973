import { open } from 'lmdb';
import { describe, expect, it } from 'vitest';
import { encodeCommand, type Command, type CommandResult } from '../../src/state/commands.js';
import type { MaterializedState } from '../../src/state/materialized-state.js';
import { unwrapEnvelopes, wrapProposals } from '../../src/node/proposal-envelope.js';
import { ByteReader } from '../../src/bytes/byte-reader.js';
import { decodeError } from '../../src/state/errors.js';
import { StateLayoutError } from '../../src/state/errors.js';
import { Meta, Table } from '../../src/state/keys.js';
import type { CommittedEntry } from '../../src/node/ports.js';
import { append, entries, tempStates } from './temp-state.js';

const states = tempStates();

/** The keys of an exported image that belong to `table`. */
function imageKeys(image: Uint8Array, table: number): Uint8Array[] {
  const input = new ByteReader(image.subarray(4), decodeError);
  const keys: Uint8Array[] = [];
  while (!input.done) {
    const key = input.bytes();
    input.bytes();
    if (key[0] === table) keys.push(key);
  }
  return keys;
}

/**
 * 300 entries over three bucket boundaries: appends to fresh aggregates, each a new proposal
 * except that some reuse an earlier entry's proposal ID and command — 3, 40, 99, 100, 101 and
 * 150 indexes later — so with a window of 100 some are answered from the table and some applied
 * again (an append at a sequence already taken: a conflict).
 */
function workload(): CommittedEntry[] {
  const log: CommittedEntry[] = [];
  const commands = new Map<number, { command: Command; proposalId: string }>();
  const distances = [3, 40, 99, 100, 101, 150];
  for (let index = 1; index <= 300; index++) {
    const original = distances.map((d) => index - d).find((earlier) => earlier >= 1 && earlier % 9 === 0 && commands.has(earlier));
    const item =
      original !== undefined && index % 2 === 0
        ? (commands.get(original) as { command: Command; proposalId: string })
        : { command: append([`agg-${index}`], 0, 1), proposalId: `id-${index}` };
    if (!commands.has(index)) commands.set(index, item);
    log.push(...entries(index, [item]));
  }
  return log;
}

async function applyInBatches(state: MaterializedState, log: readonly CommittedEntry[], size: number): Promise<Map<number, CommandResult>> {
  const byIndex = new Map<number, CommandResult>();
  for (let i = 0; i < log.length; i += size) {
    const batch = log.slice(i, i + size);
    const results = await state.apply(batch);
    // A batch answers by proposal ID: the answer stands for the last entry with that ID.
    const last = new Map(batch.map((entry) => [entry.proposalId, entry.index]));
    for (const [id, index] of last) byIndex.set(index, results.get(id as string) as CommandResult);
  }
  return byIndex;
}

describe('the table of applied proposal IDs', () => {
  it('answers a duplicate within the window from the table and applies one beyond it again, whatever the batching', async () => {
    const log = workload();
    const outcomes: Map<number, CommandResult>[] = [];
    const images: Buffer[] = [];
    for (const size of [1, 5, 64, 300]) {
      const state = states.open({ proposalWindow: 100 });
      outcomes.push(await applyInBatches(state, log, size));
      images.push(Buffer.from(await state.exportSnapshot()));
    }
    // One entry per batch answers every entry; the others answer the last of each ID per batch.
    expect(outcomes[0]?.size).toBe(300);
    for (const other of outcomes.slice(1))
      for (const [index, result] of other) expect(result, `entry ${index}`).toEqual(outcomes[0]?.get(index));
    for (const other of images.slice(1)) expect(other.equals(images[0] as Buffer)).toBe(true);

    // What each entry got, by a model of the rule: ordinals count the proposals applied (a
    // duplicate answered from the table takes none); an ID is remembered while next − ordinal ≤ 100.
    const first = outcomes[0] as Map<number, CommandResult>;
    const recorded = new Map<string, { ordinal: number; type: string }>();
    let next = 0;
    const seen = { fresh: 0, remembered: 0, forgotten: 0 };
    for (const entry of log) {
      const id = entry.proposalId as string;
      const record = recorded.get(id);
      const got = (first.get(entry.index) as CommandResult).type;
      if (record !== undefined && next - record.ordinal <= 100) {
        seen.remembered++;
        expect(got, `entry ${entry.index}: a duplicate within the window gets the recorded answer`).toBe(record.type);
        continue;
      }
      // New, or forgotten: applied (again) — a second append at a taken sequence conflicts.
      if (record === undefined) seen.fresh++;
      else seen.forgotten++;
      const type = record === undefined ? 'appended' : 'conflict';
      expect(got, `entry ${entry.index}`).toBe(type);
      recorded.set(id, { ordinal: next++, type });
    }
    expect(seen.remembered).toBeGreaterThan(5);
    expect(seen.forgotten).toBeGreaterThan(5);
  });

  it('keeps only the buckets the window still needs', async () => {
    const state = states.open({ proposalWindow: 100 });
    await state.apply(
      entries(
        1,
        Array.from({ length: 1000 }, (_, i) => append([`a${i}`], 0, 1)),
      ),
    );
    const buckets = imageKeys(await state.exportSnapshot(), Table.proposal);
    // Indexes 901–1000 are still needed: buckets 14 (896–959) and 15 (960–1023).
    expect(buckets.map((key) => Buffer.from(key).readUInt32BE(5))).toEqual([14, 15]);
  });

  it('remembers proposals across a restart and in a restored image', async () => {
    const dir = states.dir();
    const first = states.open({}, dir);
    const command = append(['once'], 0, 1);
    await first.apply(entries(1, [{ command, proposalId: 'retried' }, append(['other'], 0, 1)]));
    await first.close();

    const reopened = states.open({}, dir);
    const again = await reopened.apply(entries(3, [{ command, proposalId: 'retried' }]));
    expect(again.get('retried')).toEqual({ type: 'appended', firstPosition: 1, count: 1 });
    expect(reopened.loadEvents(['once'], 0)).toHaveLength(1);

    const restored = states.open();
    await restored.restoreSnapshot(await reopened.exportSnapshot(), reopened.appliedIndex());
    const onRestored = await restored.apply(entries(4, [{ command, proposalId: 'retried' }]));
    expect(onRestored.get('retried')).toEqual({ type: 'appended', firstPosition: 1, count: 1 });
    expect(restored.loadEvents(['once'], 0)).toHaveLength(1);
  });

  it('answers a proposal carried again by a later envelope from the table, and the envelope entries share their index', async () => {
    const state = states.open();
    const once = append(['envelope'], 0, 1);
    const first = wrapProposals('e1', [
      { id: 'x', data: encodeCommand(once) },
      { id: 'y', data: encodeCommand(append(['other'], 0, 1)) },
    ]);
    const again = wrapProposals('e2', [
      { id: 'z', data: encodeCommand(append(['other'], 1, 1)) },
      { id: 'x', data: encodeCommand(once) },
    ]);
    const log: CommittedEntry[] = [
      { index: 1, kind: 'command', proposalId: first.id, data: first.data },
      { index: 2, kind: 'command', proposalId: again.id, data: again.data },
    ];
    const out = await state.apply(unwrapEnvelopes(log));
    expect([...out]).toEqual([
      ['x', { type: 'appended', firstPosition: 1, count: 1 }],
      ['y', { type: 'appended', firstPosition: 2, count: 1 }],
      ['z', { type: 'appended', firstPosition: 3, count: 1 }],
    ]);
    expect(state.appliedIndex()).toBe(2);
    expect(state.loadEvents(['envelope'], 0)).toHaveLength(1);
    // A batch that skips an index is still refused, envelope or not.
    await expect(
      state.apply([{ index: 4, kind: 'command', proposalId: 'late', data: encodeCommand(append(['late'], 0, 1)) }]),
    ).rejects.toThrow(/expected log index 3/);
  });

  it('counts the window in proposals, so an envelope of many proposals ages IDs by as many', async () => {
    const state = states.open({ proposalWindow: 3 });
    const x = append(['x'], 0, 1);
    await state.apply(entries(1, [{ command: x, proposalId: 'x' }]));
    const envelope = wrapProposals(
      'e',
      [0, 1].map((i) => ({ id: `q${i}`, data: encodeCommand(append([`q${i}`], 0, 1)) })),
    );
    await state.apply(unwrapEnvelopes([{ index: 2, kind: 'command', proposalId: envelope.id, data: envelope.data }]));
    // Two later proposals, in one log entry: fewer than three, still remembered.
    expect((await state.apply(entries(3, [{ command: x, proposalId: 'x' }]))).get('x')).toEqual({
      type: 'appended',
      firstPosition: 1,
      count: 1,
    });
    await state.apply(entries(4, [append(['y'], 0, 1)]));
    // Three: forgotten, so applied again, and the sequence is taken.
    expect((await state.apply(entries(5, [{ command: x, proposalId: 'x' }]))).get('x')).toMatchObject({
      type: 'conflict',
      actualSequence: 1,
    });
  });

  it('forgets what a failed batch recorded', async () => {
    const state = states.open();
    const broken: CommittedEntry[] = [
      ...entries(1, [{ command: append(['a'], 0, 1), proposalId: 'q' }]),
      { index: 2, kind: 'command', proposalId: 'bad', data: null as unknown as Uint8Array },
    ];
    await expect(state.apply(broken)).rejects.toThrow();
    // 'q' never committed: the same ID with another command is a new proposal, and the positions
    // the failed batch had taken are given again.
    const out = await state.apply(entries(1, [{ command: append(['b'], 0, 2), proposalId: 'q' }]));
    expect(out.get('q')).toEqual({ type: 'appended', firstPosition: 1, count: 2 });
    expect(state.listAggregates([], { limit: 10 })).toEqual({ items: [['b']] });
  });
});

describe('the state layout version', () => {
  it('refuses a folder written with an older layout, and an image of one', async () => {
    const unstamped = states.dir();
    const raw = open<Buffer, Buffer>({ path: unstamped, keyEncoding: 'binary', encoding: 'binary' });
    // Layout 1 had no stamp; its proposal rows were keyed by the ID.
    await raw.put(Buffer.from([Table.proposal, 0x70]), Buffer.from([1, 1, 1]));
    await raw.close();
    expect(() => states.open({}, unstamped)).toThrow(StateLayoutError);
    expect(() => states.open({}, unstamped)).toThrow(/layout version 1/);

    const state = states.open();
    await state.apply(entries(1, [append(['a'], 0, 1)]));
    const image = Buffer.from(await state.exportSnapshot());
    image[3] = 1;
    await expect(state.restoreSnapshot(image, 9)).rejects.toThrow(/layout version 1; this build reads version 3/);
    // Layout 2 stored events without log positions: an image or a folder of it is refused too.
    image[3] = 2;
    await expect(state.restoreSnapshot(image, 9)).rejects.toThrow(/layout version 2; this build reads version 3/);
    const older = states.dir();
    const stamped = open<Buffer, Buffer>({ path: older, keyEncoding: 'binary', encoding: 'binary' });
    await stamped.put(Buffer.from([Table.meta, Meta.layoutVersion]), Buffer.from([2]));
    await stamped.close();
    expect(() => states.open({}, older)).toThrow(/layout version 2; this build reads layout version 3/);
    expect(state.appliedIndex()).toBe(1);
  });

  it('validates headCacheSize', () => {
    expect(() => states.open({ headCacheSize: 0 })).toThrow(/headCacheSize/);
  });
});
