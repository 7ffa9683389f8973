import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryLogStorage } from '../../src/consensus/storage.js';
import { RaftProtocolError } from '../../src/consensus/errors.js';
import { WriteAheadLog } from '../../src/wal/index.js';
import type { Entry, HardState, Snapshot } from '../../src/consensus/types.js';
import { payload, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

/** Small segments so rollover and segment deletion happen within a few operations. */
const OPTIONS = { segmentBytes: 700, tailSize: 2048 };

type SaveSpec = {
  readonly snapshotAhead: number | null;
  readonly snapshotTerm: number;
  readonly start: number;
  readonly count: number;
  readonly term: number;
  readonly size: number;
  readonly gap: boolean;
  readonly hardState: HardState | null;
};

type Op =
  | { readonly type: 'save'; readonly spec: SaveSpec }
  | { readonly type: 'burst'; readonly specs: readonly SaveSpec[] }
  | { readonly type: 'createSnapshot'; readonly at: number }
  | { readonly type: 'compact'; readonly at: number }
  | { readonly type: 'reopen' };

const hardState = fc.record({ term: fc.nat(20), vote: fc.option(fc.constantFrom('a', 'b', 'ç'), { nil: null }), commit: fc.nat(200) });
const saveSpec: fc.Arbitrary<SaveSpec> = fc.record({
  snapshotAhead: fc.option(fc.nat(12), { nil: null, freq: 8 }),
  snapshotTerm: fc.integer({ min: 1, max: 9 }),
  start: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
  count: fc.nat(7),
  term: fc.integer({ min: 1, max: 9 }),
  size: fc.nat(120),
  gap: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
  hardState: fc.option(hardState, { nil: null }),
});
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: saveSpec.map((spec) => ({ type: 'save' as const, spec })) },
  {
    weight: 2,
    arbitrary: fc
      .array(
        saveSpec.map((s) => ({ ...s, snapshotAhead: null, gap: false })),
        { minLength: 2, maxLength: 6 },
      )
      .map((specs) => ({ type: 'burst' as const, specs })),
  },
  {
    weight: 2,
    arbitrary: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }).map((at) => ({ type: 'createSnapshot' as const, at })),
  },
  { weight: 2, arbitrary: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }).map((at) => ({ type: 'compact' as const, at })) },
  { weight: 1, arbitrary: fc.constant({ type: 'reopen' as const }) },
);

function makeEntries(start: number, count: number, term: number, size: number): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < count; i++) {
    const index = start + i;
    out.push(
      i % 3 === 2
        ? { index, term, kind: 'empty', proposalId: null, data: new Uint8Array(0) }
        : { index, term, kind: 'command', proposalId: `id-${index}-${term}`, data: payload(index, term, size) },
    );
  }
  return out;
}

/**
 * Turns a save's random spec into a write against the model's current state: overwrites only
 * above the snapshot (Raft never rewrites what a snapshot covers), a leader snapshot ahead of the
 * current one, and sometimes a gap that both must refuse.
 */
function toWrite(model: MemoryLogStorage, spec: SaveSpec): { snapshot: Snapshot | null; entries: Entry[]; hardState: HardState | null } {
  let snapshot: Snapshot | null = null;
  let base = model.snapshot().meta.index;
  let last = model.lastIndex();
  if (spec.snapshotAhead !== null) {
    const index = base + 1 + spec.snapshotAhead;
    snapshot = { meta: { index, term: spec.snapshotTerm, voters: [`v${index}`] }, data: payload(index, 0, 3) };
    base = last = index;
  }
  const start = spec.gap && snapshot === null ? last + 2 : base + 1 + Math.floor(spec.start * (last - base + 1));
  return { snapshot, entries: makeEntries(start, spec.count, spec.term, spec.size), hardState: spec.hardState };
}

/** Applies a write to the model, all or nothing; returns the error the WAL must also give. */
function applyToModel(model: MemoryLogStorage, write: ReturnType<typeof toWrite>): unknown {
  const first = write.entries[0];
  const last =
    write.snapshot !== null && write.snapshot.meta.index > model.snapshot().meta.index ? write.snapshot.meta.index : model.lastIndex();
  if (first !== undefined && first.index > last + 1) return new RaftProtocolError('storage gap');
  if (write.snapshot !== null) model.applySnapshot(write.snapshot);
  model.append(write.entries);
  if (write.hardState !== null) model.setHardState(write.hardState);
  return null;
}

/** What a MemoryLogStorage holding what the WAL keeps across a restart would look like. */
function restarted(model: MemoryLogStorage): MemoryLogStorage {
  const fresh = new MemoryLogStorage();
  const snap = model.snapshot();
  if (snap.meta.index > 0) fresh.applySnapshot(snap);
  const from = snap.meta.index + 1;
  if (model.lastIndex() >= from) fresh.append(model.entries(from, model.lastIndex() + 1, Infinity));
  fresh.setHardState(model.hardState());
  return fresh;
}

function expectSame(wal: WriteAheadLog, model: MemoryLogStorage): void {
  expect(wal.firstIndex()).toBe(model.firstIndex());
  expect(wal.lastIndex()).toBe(model.lastIndex());
  expect(wal.hardState()).toEqual(model.hardState());
  expect(wal.initialState()).toEqual(model.initialState());
  expect(wal.snapshot()).toEqual(model.snapshot());
  for (let i = model.firstIndex() - 1; i <= model.lastIndex(); i++) expect(wal.term(i)).toBe(model.term(i));
  if (model.lastIndex() >= model.firstIndex()) {
    expect(wal.entries(model.firstIndex(), model.lastIndex() + 1, Infinity)).toEqual(
      model.entries(model.firstIndex(), model.lastIndex() + 1, Infinity),
    );
    expect(wal.entries(model.firstIndex(), model.lastIndex() + 1, 300)).toEqual(
      model.entries(model.firstIndex(), model.lastIndex() + 1, 300),
    );
  }
}

async function outcome(promise: Promise<unknown>): Promise<string | null> {
  try {
    await promise;
    return null;
  } catch (error) {
    return (error as Error).constructor.name;
  }
}

function modelOutcome(action: () => unknown): string | null {
  try {
    action();
    return null;
  } catch (error) {
    return (error as Error).constructor.name;
  }
}

// The second keeps only a few hundred bytes of entries in memory: most reads go to the files.
const VARIANTS = [
  { name: 'entries held by count', options: OPTIONS, runs: 200 },
  { name: 'entries held by a small byte budget', options: { ...OPTIONS, tailBytes: 300 }, runs: 100 },
];

describe.each(VARIANTS)('WriteAheadLog against MemoryLogStorage, $name', ({ options: OPTIONS, runs }) => {
  it('random save/createSnapshot/compact/reopen sequences give the same observable state', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
        const dir = dirs.make();
        let wal = await WriteAheadLog.open(dir, OPTIONS);
        let model = new MemoryLogStorage();
        try {
          for (const step of ops) {
            switch (step.type) {
              case 'save': {
                const write = toWrite(model, step.spec);
                const expected = applyToModel(model, write);
                expect(await outcome(wal.save(write))).toBe(expected === null ? null : 'RaftProtocolError');
                break;
              }
              case 'burst': {
                const pending: Promise<void>[] = [];
                for (const spec of step.specs) {
                  const write = toWrite(model, spec);
                  applyToModel(model, write);
                  pending.push(wal.save(write));
                }
                await Promise.all(pending);
                break;
              }
              case 'createSnapshot': {
                const lo = model.firstIndex() - 1;
                const index = lo + Math.floor(step.at * (model.lastIndex() - lo + 1));
                const data = payload(index, 1, 5);
                const expected = modelOutcome(() => model.createSnapshot(index, ['x', `y${index}`], data));
                expect(await outcome(wal.createSnapshot(index, ['x', `y${index}`], data))).toBe(expected);
                break;
              }
              case 'compact': {
                const lo = model.firstIndex() - 1;
                const index = lo + Math.floor(step.at * (model.snapshot().meta.index - lo + 2));
                const expected = modelOutcome(() => model.compact(index));
                expect(await outcome(wal.compact(index))).toBe(expected);
                break;
              }
              case 'reopen':
                await wal.close();
                wal = await WriteAheadLog.open(dir, OPTIONS);
                model = restarted(model);
                break;
            }
            expectSame(wal, model);
          }
          await wal.close();
          const reopened = await WriteAheadLog.open(dir, OPTIONS);
          expectSame(reopened, restarted(model));
          await reopened.close();
        } finally {
          await wal.close();
          dirs.cleanup();
        }
      }),
      { numRuns: runs },
    );
  }, 600_000);
});
