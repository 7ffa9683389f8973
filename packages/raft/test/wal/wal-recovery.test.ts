import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WalCorruptionError, WriteAheadLog } from '../../src/wal/index.js';
import { run, segmentFiles, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

/** Seeded so a failure replays; mulberry32. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A log with three batches: entries 1..10 (term 1), 11..20 (term 2), then a last batch with
 * 21..30 (term 3) and a hard state. Returns the segment file and where the last batch starts.
 */
async function threeBatches(dir: string): Promise<{ file: string; lastStart: number; lastEnd: number }> {
  const wal = await WriteAheadLog.open(dir);
  await wal.save({ snapshot: null, entries: run(1, 10, 1), hardState: { term: 1, vote: 'a', commit: 1 } });
  await wal.save({ snapshot: null, entries: run(11, 20, 2), hardState: { term: 2, vote: 'b', commit: 11 } });
  const lastStart = wal.stats().bytes;
  await wal.save({ snapshot: null, entries: run(21, 30, 3), hardState: { term: 3, vote: 'c', commit: 21 } });
  const lastEnd = wal.stats().bytes;
  await wal.close();
  const [file] = segmentFiles(dir);
  expect(fs.statSync(file as string).size).toBe(lastEnd);
  return { file: file as string, lastStart, lastEnd };
}

async function expectBeforeLastBatch(dir: string, lastStart: number, file: string): Promise<void> {
  const wal = await WriteAheadLog.open(dir);
  expect(wal.lastIndex()).toBe(20);
  expect(wal.entries(1, 21, Infinity)).toEqual([...run(1, 10, 1), ...run(11, 20, 2)]);
  expect(wal.hardState()).toEqual({ term: 2, vote: 'b', commit: 11 });
  expect(fs.statSync(file).size).toBe(lastStart); // the partial batch is gone from disk
  // Appending after recovery works and survives another reopen.
  await wal.save({ snapshot: null, entries: run(21, 22, 4), hardState: { term: 4, vote: null, commit: 20 } });
  await wal.close();
  const again = await WriteAheadLog.open(dir);
  expect(again.lastIndex()).toBe(22);
  expect(again.entries(19, 23, Infinity)).toEqual([...run(19, 20, 2), ...run(21, 22, 4)]);
  expect(again.hardState()).toEqual({ term: 4, vote: null, commit: 20 });
  await again.close();
}

describe('WriteAheadLog recovery', () => {
  it('cuts a torn last batch at 60 random offsets, keeping everything before it and nothing of it', async () => {
    const random = rng(20261123);
    const template = dirs.make();
    const { file, lastStart, lastEnd } = await threeBatches(template);
    const original = fs.readFileSync(file);
    const cuts = new Set<number>([lastStart + 1, lastStart + 19, lastStart + 20, lastEnd - 1]);
    while (cuts.size < 60) cuts.add(lastStart + 1 + Math.floor(random() * (lastEnd - lastStart - 1)));
    for (const cut of cuts) {
      const dir = dirs.make();
      const copy = path.join(dir, path.basename(file));
      fs.writeFileSync(copy, original.subarray(0, cut));
      await expectBeforeLastBatch(dir, lastStart, copy);
    }
  });

  it('treats a flipped bit inside the last batch as a torn tail (documented choice)', async () => {
    const random = rng(7);
    const template = dirs.make();
    const { file, lastStart, lastEnd } = await threeBatches(template);
    const original = fs.readFileSync(file);
    for (let round = 0; round < 20; round++) {
      const dir = dirs.make();
      const copy = path.join(dir, path.basename(file));
      const damaged = Buffer.from(original);
      const at = lastStart + Math.floor(random() * (lastEnd - lastStart));
      damaged[at] = (damaged[at] as number) ^ (1 << Math.floor(random() * 8));
      fs.writeFileSync(copy, damaged);
      await expectBeforeLastBatch(dir, lastStart, copy);
    }
  });

  it('refuses a flipped bit in an earlier batch, naming file and offset, and leaves the file untouched', async () => {
    const random = rng(99);
    const template = dirs.make();
    const { file, lastStart } = await threeBatches(template);
    const original = fs.readFileSync(file);
    for (let round = 0; round < 20; round++) {
      const dir = dirs.make();
      const copy = path.join(dir, path.basename(file));
      const damaged = Buffer.from(original);
      const at = Math.floor(random() * lastStart);
      damaged[at] = (damaged[at] as number) ^ (1 << Math.floor(random() * 8));
      fs.writeFileSync(copy, damaged);
      const error = await WriteAheadLog.open(dir).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(WalCorruptionError);
      const corruption = error as WalCorruptionError;
      expect(corruption.file).toBe(copy);
      expect(corruption.offset).toBeLessThanOrEqual(at);
      expect(corruption.message).toContain(copy);
      expect(corruption.message).toContain(`offset ${corruption.offset}`);
      expect(corruption.message).toMatch(/checksum mismatch|bad magic|length beyond end|frame/);
      expect(fs.readFileSync(copy).equals(damaged)).toBe(true);
      expect(fs.readdirSync(dir)).toEqual([path.basename(file)]);
    }
  });

  it('refuses damage in a segment that is not the last one, even in its last batch', async () => {
    const dir = dirs.make();
    const wal = await WriteAheadLog.open(dir, { segmentBytes: 512 });
    for (let i = 1; i <= 60; i += 6) await wal.save({ snapshot: null, entries: run(i, i + 5, 1), hardState: null });
    await wal.close();
    const files = segmentFiles(dir);
    expect(files.length).toBeGreaterThan(2);
    const first = files[0] as string;
    const size = fs.statSync(first).size;
    fs.truncateSync(first, size - 3);
    const before = fs.readFileSync(first);
    await expect(WriteAheadLog.open(dir, { segmentBytes: 512 })).rejects.toThrow(WalCorruptionError);
    await expect(WriteAheadLog.open(dir, { segmentBytes: 512 })).rejects.toThrow(/length beyond end/);
    expect(fs.readFileSync(first).equals(before)).toBe(true);
  });

  it('refuses a damaged snapshot file and removes leftover temporary files only when healthy', async () => {
    const dir = dirs.make();
    const wal = await WriteAheadLog.open(dir);
    await wal.save({ snapshot: null, entries: run(1, 5, 1), hardState: null });
    await wal.createSnapshot(3, ['a'], new Uint8Array([1, 2, 3, 4]));
    await wal.close();
    fs.writeFileSync(path.join(dir, 'snapshot-00000000000000000009.snap.tmp'), 'half');
    await (await WriteAheadLog.open(dir)).close();
    expect(fs.readdirSync(dir).some((n) => n.endsWith('.tmp'))).toBe(false);
    const snap = path.join(dir, 'snapshot-00000000000000000003.snap');
    const bytes = fs.readFileSync(snap);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
    fs.writeFileSync(snap, bytes);
    await expect(WriteAheadLog.open(dir)).rejects.toThrow(/snapshot-00000000000000000003\.snap at byte offset 12: checksum mismatch/);
  });

  it('recovers when the process died between a leader snapshot file and its log reset', async () => {
    const dir = dirs.make();
    const wal = await WriteAheadLog.open(dir);
    await wal.save({ snapshot: null, entries: run(1, 30, 1), hardState: { term: 1, vote: null, commit: 5 } });
    const lastStart = wal.stats().bytes;
    await wal.save({
      snapshot: { meta: { index: 20, term: 5, voters: ['a'] }, data: new Uint8Array([7]) },
      entries: run(21, 22, 5),
      hardState: null,
    });
    await wal.close();
    // Tear the batch that carried the reset: the snapshot file is there, the log still holds the
    // old entries whose term at 20 disagrees, so they must all go.
    const [file] = segmentFiles(dir);
    fs.truncateSync(file as string, lastStart + 5);
    const again = await WriteAheadLog.open(dir);
    expect(again.snapshot().meta.index).toBe(20);
    expect(again.firstIndex()).toBe(21);
    expect(again.lastIndex()).toBe(20);
    expect(again.term(20)).toBe(5);
    await again.close();
  });
});
