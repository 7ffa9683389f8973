import * as fs from 'node:fs';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { ConfigError } from '@timebox/core';
import { afterEach, describe, expect, it } from 'vitest';
import { LogCompactedError, LogUnavailableError, RaftProtocolError } from '../../src/consensus/errors.js';
import { MemoryLogStorage } from '../../src/consensus/storage.js';
import { WalUnavailableError, WriteAheadLog } from '../../src/wal/index.js';
import type { Snapshot } from '../../src/consensus/types.js';
import { crc32, crc32Fallback } from '../../src/wal/crc32.js';
import { snapshotName } from '../../src/wal/file-names.js';
import { readSnapshotFile, writeSnapshotFile } from '../../src/wal/snapshot-file.js';
import { entry, run, segmentFiles, snapshotFiles, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

describe('WriteAheadLog basics', () => {
  it('rejects bad options with ConfigError naming the field', async () => {
    const dir = dirs.make();
    await expect(WriteAheadLog.open(dir, { tailSize: 2047 })).rejects.toThrow(ConfigError);
    await expect(WriteAheadLog.open(dir, { tailSize: 2047 })).rejects.toThrow(/tailSize/);
    await expect(WriteAheadLog.open(dir, { segmentBytes: 0 })).rejects.toThrow(/segmentBytes/);
    await expect(WriteAheadLog.open('', {})).rejects.toThrow(/dir/);
  });

  it('starts empty, creating the directory', async () => {
    const dir = `${dirs.make()}/nested/wal`;
    const wal = await WriteAheadLog.open(dir);
    expect(wal.firstIndex()).toBe(1);
    expect(wal.lastIndex()).toBe(0);
    expect(wal.term(0)).toBe(0);
    expect(wal.hardState()).toEqual({ term: 0, vote: null, commit: 0 });
    expect(wal.initialState()).toEqual({ hardState: { term: 0, vote: null, commit: 0 }, voters: [] });
    expect(wal.snapshot().meta).toEqual({ index: 0, term: 0, voters: [] });
    await wal.close();
    await wal.close();
    await expect(wal.save({ snapshot: null, entries: [], hardState: null })).rejects.toThrow(WalUnavailableError);
  });

  it('round-trips entries, hard state, snapshot, first/last index and terms across reopen', async () => {
    const dir = dirs.make();
    const wal = await WriteAheadLog.open(dir);
    await wal.save({ snapshot: null, entries: run(1, 10, 1), hardState: { term: 1, vote: 'n1', commit: 3 } });
    await wal.save({ snapshot: null, entries: run(11, 20, 2), hardState: { term: 2, vote: 'n2', commit: 12 } });
    const snap = await wal.createSnapshot(8, ['n1', 'n2', 'n3'], new Uint8Array([1, 2, 3]));
    expect(snap.meta).toEqual({ index: 8, term: 1, voters: ['n1', 'n2', 'n3'] });
    const before = wal.entries(9, 21, Infinity);
    await wal.close();

    const again = await WriteAheadLog.open(dir);
    expect(again.hardState()).toEqual({ term: 2, vote: 'n2', commit: 12 });
    expect(again.snapshot()).toEqual(snap);
    expect(again.initialState().voters).toEqual(['n1', 'n2', 'n3']);
    expect(again.firstIndex()).toBe(9); // recovery drops what the snapshot covers
    expect(again.lastIndex()).toBe(20);
    expect(again.term(8)).toBe(1);
    expect(again.term(15)).toBe(2);
    expect(again.entries(9, 21, Infinity)).toEqual(before);
    expect(again.entries(11, 21, Infinity)).toEqual(run(11, 20, 2));
    await again.close();
  });

  it('answers out-of-range reads like MemoryLogStorage', async () => {
    const wal = await WriteAheadLog.open(dirs.make());
    const model = new MemoryLogStorage();
    const entries = run(1, 6, 1);
    await wal.save({ snapshot: null, entries, hardState: null });
    model.append(entries);
    await wal.createSnapshot(3, ['a'], new Uint8Array(0));
    model.createSnapshot(3, ['a'], new Uint8Array(0));
    await wal.compact(2);
    model.compact(2);
    for (const store of [wal, model]) {
      expect(() => store.term(1)).toThrow(LogCompactedError);
      expect(() => store.term(7)).toThrow(LogUnavailableError);
      expect(() => store.entries(2, 4, Infinity)).toThrow(LogCompactedError);
      expect(() => store.entries(3, 8, Infinity)).toThrow(LogUnavailableError);
    }
    expect(wal.term(2)).toBe(model.term(2));
    expect(wal.entries(3, 7, 0)).toEqual(model.entries(3, 7, 0)); // at least one entry
    expect(wal.entries(3, 7, 100)).toEqual(model.entries(3, 7, 100));
    await expect(wal.compact(4)).rejects.toThrow(RaftProtocolError);
    expect(() => model.compact(4)).toThrow(RaftProtocolError);
    await expect(wal.save({ snapshot: null, entries: [entry(9, 1)], hardState: null })).rejects.toThrow(/storage gap/);
    await expect(wal.createSnapshot(9, [], new Uint8Array(0))).rejects.toThrow(LogUnavailableError);
    // A rejected call leaves the log usable.
    await wal.save({ snapshot: null, entries: [entry(7, 1)], hardState: null });
    expect(wal.lastIndex()).toBe(7);
    await wal.close();
  });

  it('makes a conflicting-suffix overwrite durable', async () => {
    const dir = dirs.make();
    const wal = await WriteAheadLog.open(dir);
    await wal.save({ snapshot: null, entries: run(1, 30, 1), hardState: { term: 1, vote: null, commit: 5 } });
    await wal.save({ snapshot: null, entries: run(11, 15, 2), hardState: { term: 2, vote: 'b', commit: 5 } });
    expect(wal.lastIndex()).toBe(15);
    await wal.close();
    const again = await WriteAheadLog.open(dir);
    expect(again.lastIndex()).toBe(15);
    expect(again.entries(1, 16, Infinity)).toEqual([...run(1, 10, 1), ...run(11, 15, 2)]);
    await again.save({ snapshot: null, entries: run(16, 17, 2), hardState: null });
    await again.close();
    const third = await WriteAheadLog.open(dir);
    expect(third.entries(1, 18, Infinity)).toEqual([...run(1, 10, 1), ...run(11, 17, 2)]);
    await third.close();
  });

  it('group commit: 200 saves issued in one tick share few syncs and all survive reopen', async () => {
    const dir = dirs.make();
    const wal = await WriteAheadLog.open(dir);
    const calls: Promise<void>[] = [];
    for (let i = 1; i <= 200; i++)
      calls.push(wal.save({ snapshot: null, entries: [entry(i, 1)], hardState: { term: 1, vote: null, commit: i - 1 } }));
    await Promise.all(calls);
    const { syncs, writes } = wal.stats();
    expect(syncs).toBeGreaterThan(0);
    expect(syncs).toBeLessThanOrEqual(10);
    expect(writes).toBe(syncs);
    expect(wal.lastIndex()).toBe(200);
    await wal.close();
    const again = await WriteAheadLog.open(dir);
    expect(again.entries(1, 201, Infinity)).toEqual(run(1, 200, 1));
    expect(again.hardState().commit).toBe(199);
    await again.close();
  });

  it('writes a save that only moves the commit index without a sync of its own; the next synced save covers it', async () => {
    const dir = dirs.make();
    const wal = await WriteAheadLog.open(dir, { segmentBytes: 4 * 1024 });
    await wal.save({ snapshot: null, entries: run(1, 5, 1), hardState: { term: 1, vote: 'n1', commit: 0 } });
    const synced = wal.stats().syncs;
    await wal.save({ snapshot: null, entries: [], hardState: { term: 1, vote: 'n1', commit: 5 } });
    expect(wal.stats().syncs).toBe(synced);
    expect(wal.stats().writes).toBe(2);
    expect(wal.hardState().commit).toBe(5);
    // A new term or vote is never lazy, nor are entries.
    await wal.save({ snapshot: null, entries: [], hardState: { term: 2, vote: null, commit: 5 } });
    expect(wal.stats().syncs).toBe(synced + 1);
    await wal.save({ snapshot: null, entries: [], hardState: { term: 2, vote: 'n2', commit: 5 } });
    expect(wal.stats().syncs).toBe(synced + 2);
    await wal.save({ snapshot: null, entries: [], hardState: { term: 2, vote: 'n2', commit: 5 } });
    const last = wal.lastIndex();
    await wal.close();
    const again = await WriteAheadLog.open(dir, { segmentBytes: 4 * 1024 });
    expect(again.hardState()).toEqual({ term: 2, vote: 'n2', commit: last });
    await again.close();
  });

  it('syncs a lazily written commit index before leaving its segment', async () => {
    const dir = dirs.make();
    // One byte per segment: every save after the first starts a new segment.
    const wal = await WriteAheadLog.open(dir, { segmentBytes: 1 });
    await wal.save({ snapshot: null, entries: run(1, 3, 1), hardState: { term: 1, vote: null, commit: 0 } });
    const start = wal.stats();
    await wal.save({ snapshot: null, entries: [], hardState: { term: 1, vote: null, commit: 3 } });
    expect(wal.stats().syncs).toBe(start.syncs);
    await wal.save({ snapshot: null, entries: run(4, 5, 1), hardState: null });
    // The old segment's lazy write, then this save's own.
    expect(wal.stats().syncs).toBe(start.syncs + 2);
    expect(wal.stats().segments).toBe(start.segments + 2);
    await wal.close();
    const again = await WriteAheadLog.open(dir, { segmentBytes: 1 });
    expect(again.hardState().commit).toBe(3);
    expect(again.lastIndex()).toBe(5);
    await again.close();
  });

  it('resolves each save only once its own bytes are durable, with reads reflecting it', async () => {
    const wal = await WriteAheadLog.open(dirs.make());
    const seen: number[] = [];
    const calls: Promise<void>[] = [];
    for (let i = 1; i <= 50; i++) {
      calls.push(wal.save({ snapshot: null, entries: [entry(i, 1)], hardState: null }).then(() => void seen.push(wal.lastIndex())));
    }
    await Promise.all(calls);
    for (let i = 0; i < 50; i++) expect(seen[i]).toBeGreaterThanOrEqual(i + 1);
    await wal.close();
  });

  it('rolls segments over and reads across them, beyond the in-memory tail', async () => {
    const dir = dirs.make();
    const wal = await WriteAheadLog.open(dir, { tailSize: 2048, segmentBytes: 16 * 1024 });
    for (let i = 1; i <= 6000; i += 100)
      await wal.save({ snapshot: null, entries: run(i, i + 99, 3), hardState: { term: 3, vote: null, commit: i } });
    const { segments } = wal.stats();
    expect(segments).toBeGreaterThan(10);
    expect(segmentFiles(dir)).toHaveLength(segments);
    // Index 1 is far beyond the 2048-entry tail: it comes from the first segment file.
    expect(wal.entries(1, 6001, Infinity)).toEqual(run(1, 6000, 3));
    expect(wal.entries(100, 4000, 3000)).toEqual(wal.entries(100, 4000, 3000));
    expect(wal.entries(100, 4000, 3000).length).toBeLessThan(3900);
    await wal.close();
    const again = await WriteAheadLog.open(dir, { tailSize: 2048, segmentBytes: 16 * 1024 });
    expect(again.entries(1, 6001, Infinity)).toEqual(run(1, 6000, 3));
    expect(again.hardState().commit).toBe(5901);
    // Overwrite a suffix reaching back into an older segment, then reopen.
    await again.save({ snapshot: null, entries: run(1000, 1010, 4), hardState: null });
    await again.close();
    const third = await WriteAheadLog.open(dir, { tailSize: 2048, segmentBytes: 16 * 1024 });
    expect(third.lastIndex()).toBe(1010);
    expect(third.entries(1, 1011, Infinity)).toEqual([...run(1, 999, 3), ...run(1000, 1010, 4)]);
    await third.close();
  });

  it('keeps at most tailBytes of entries in memory, however few entries that is, and reads the rest back', async () => {
    const dir = dirs.make();
    const big = (index: number) => ({ ...entry(index, 1), data: new Uint8Array(1000).fill(index % 251) });
    const wal = await WriteAheadLog.open(dir, { tailSize: 2048, tailBytes: 10_000 });
    const written = Array.from({ length: 100 }, (_, i) => big(i + 1));
    for (let i = 0; i < 100; i += 10) await wal.save({ snapshot: null, entries: written.slice(i, i + 10), hardState: null });
    // 100 entries of ~1 KB, far fewer than tailSize: the byte budget decides.
    expect(wal.stats().tailBytes).toBeLessThanOrEqual(10_000);
    expect(wal.stats().tailBytes).toBeGreaterThan(8_000);
    expect(wal.entries(1, 101, Infinity)).toEqual(written);
    // Overwriting a suffix and compacting keep the accounting right.
    await wal.save({ snapshot: null, entries: [big(95)], hardState: null });
    expect(wal.lastIndex()).toBe(95);
    await wal.createSnapshot(50, ['a'], new Uint8Array([1]));
    await wal.compact(50);
    expect(wal.stats().tailBytes).toBeLessThanOrEqual(10_000);
    expect(wal.entries(51, 96, Infinity)).toEqual(written.slice(50, 95));
    await expect(WriteAheadLog.open(dirs.make(), { tailBytes: 0 })).rejects.toThrow(/tailBytes/);
    await wal.close();
  });

  it('snapshot + compact deletes old segments; reopen starts after the snapshot and keeps the hard state', async () => {
    const dir = dirs.make();
    const options = { segmentBytes: 8 * 1024 };
    const wal = await WriteAheadLog.open(dir, options);
    await wal.save({ snapshot: null, entries: [], hardState: { term: 7, vote: 'x', commit: 0 } });
    for (let i = 1; i <= 2000; i += 50) await wal.save({ snapshot: null, entries: run(i, i + 49, 7), hardState: null });
    const segmentsBefore = segmentFiles(dir).length;
    const snap = await wal.createSnapshot(1500, ['x', 'y'], new Uint8Array([9, 9]));
    expect(snapshotFiles(dir)).toHaveLength(1);
    await wal.compact(1500);
    expect(wal.firstIndex()).toBe(1501);
    const segmentsAfter = segmentFiles(dir).length;
    expect(segmentsAfter).toBeLessThan(segmentsBefore);
    expect(wal.stats().segments).toBe(segmentsAfter);
    expect(wal.entries(1501, 2001, Infinity)).toEqual(run(1501, 2000, 7));
    const second = await wal.createSnapshot(1900, ['x'], new Uint8Array([1]));
    expect(snapshotFiles(dir)).toHaveLength(1);
    await wal.compact(1900);
    await wal.close();
    const again = await WriteAheadLog.open(dir, options);
    expect(again.snapshot()).toEqual(second);
    expect(snap.meta.index).toBe(1500);
    expect(again.firstIndex()).toBe(1901);
    expect(again.lastIndex()).toBe(2000);
    expect(again.term(1900)).toBe(7);
    expect(again.hardState()).toEqual({ term: 7, vote: 'x', commit: 0 });
    expect(again.entries(1901, 2001, Infinity)).toEqual(run(1901, 2000, 7));
    await again.close();
  });

  it('a leader snapshot via save() replaces the whole log and survives reopen', async () => {
    const dir = dirs.make();
    const wal = await WriteAheadLog.open(dir);
    await wal.save({ snapshot: null, entries: run(1, 40, 1), hardState: { term: 1, vote: null, commit: 2 } });
    const leader: Snapshot = { meta: { index: 25, term: 3, voters: ['a', 'b', 'c'] }, data: new Uint8Array([4, 5, 6]) };
    await wal.save({ snapshot: leader, entries: run(26, 27, 3), hardState: { term: 3, vote: 'a', commit: 25 } });
    expect(wal.firstIndex()).toBe(26);
    expect(wal.lastIndex()).toBe(27);
    expect(wal.term(25)).toBe(3);
    expect(snapshotFiles(dir)).toEqual(['snapshot-00000000000000000025.snap']);
    await wal.close();
    const again = await WriteAheadLog.open(dir);
    expect(again.snapshot()).toEqual(leader);
    expect(again.firstIndex()).toBe(26);
    expect(again.lastIndex()).toBe(27);
    expect(again.entries(26, 28, Infinity)).toEqual(run(26, 27, 3));
    expect(again.hardState()).toEqual({ term: 3, vote: 'a', commit: 25 });
    // An older snapshot is ignored, as MemoryLogStorage does.
    await again.save({ snapshot: { ...leader, meta: { ...leader.meta, index: 20 } }, entries: [], hardState: null });
    expect(again.snapshot()).toEqual(leader);
    await again.close();
  });

  it('skips entries at or below the compacted base, as MemoryLogStorage does', async () => {
    const wal = await WriteAheadLog.open(dirs.make());
    const model = new MemoryLogStorage();
    await wal.save({ snapshot: null, entries: run(1, 10, 1), hardState: null });
    model.append(run(1, 10, 1));
    await wal.createSnapshot(6, [], new Uint8Array(0));
    model.createSnapshot(6, [], new Uint8Array(0));
    await wal.compact(6);
    model.compact(6);
    await wal.save({ snapshot: null, entries: run(4, 12, 1), hardState: null });
    model.append(run(4, 12, 1));
    expect(wal.firstIndex()).toBe(model.firstIndex());
    expect(wal.lastIndex()).toBe(model.lastIndex());
    expect(wal.entries(7, 13, Infinity)).toEqual(model.entries(7, 13, Infinity));
    await wal.close();
  });

  it('its table CRC agrees with zlib', () => {
    const data = Buffer.from('timebox write-ahead log \u00e9\u{1f600}');
    expect(crc32Fallback(data)).toBe(crc32(data));
    const native = (zlib as { crc32?: (d: Uint8Array) => number }).crc32;
    if (typeof native === 'function') expect(crc32Fallback(data)).toBe(native(data));
    expect(crc32Fallback(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('checksums piece by piece the same as in one piece, native and table', () => {
    const data = Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 31 + 7) & 0xff));
    for (const crc of [crc32, crc32Fallback]) {
      let piecewise = 0;
      for (const cut of [
        [0, 1],
        [1, 4000],
        [4000, 4000],
        [4000, 10_000],
      ])
        piecewise = crc(data.subarray(cut[0], cut[1]), piecewise);
      expect(piecewise).toBe(crc32(data));
    }
    expect(crc32(data.subarray(5000), crc32(data.subarray(0, 5000)))).not.toBe(crc32(data.subarray(0, 5000)));
  });

  it('writes a snapshot larger than a write piece and reads it back whole; a flipped byte in its data is corruption', async () => {
    const dir = dirs.make();
    // 9 MiB and a bit: three pieces, the last one short.
    const data = Buffer.from(Array.from({ length: 9 * 2 ** 20 + 123 }, (_, i) => (i * 131 + (i >> 12)) & 0xff));
    const snapshot: Snapshot = {
      meta: { index: 42, term: 3, voters: ['n1', 'n2'], learners: ['n4'], addresses: { n4: '127.0.0.1:7004' } },
      data,
    };
    await writeSnapshotFile(dir, snapshot);
    const file = join(dir, snapshotName(42));
    const read = await readSnapshotFile(file);
    expect(read.meta).toEqual(snapshot.meta);
    expect(Buffer.from(read.data).equals(data)).toBe(true);
    expect(existsSync(`${file}.tmp`)).toBe(false);

    const bytes = await readFile(file);
    const at = bytes.length - 4_000_000;
    bytes[at] = (bytes[at] as number) ^ 0x01;
    await writeFile(file, bytes);
    await expect(readSnapshotFile(file)).rejects.toThrow(/checksum mismatch/);
  });

  it('keeps files closed after close()', async () => {
    const dir = dirs.make();
    const wal = await WriteAheadLog.open(dir);
    await wal.save({ snapshot: null, entries: run(1, 3, 1), hardState: null });
    await wal.close();
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});

describe('WriteAheadLog and membership', () => {
  it('keeps membership-change entries and a snapshot’s learners and addresses across reopen', async () => {
    const dir = dirs.make();
    const wal = await WriteAheadLog.open(dir);
    const config = { index: 3, term: 1, kind: 'config' as const, proposalId: null, data: new Uint8Array([1, 2]) };
    await wal.save({ snapshot: null, entries: [...run(1, 2, 1), config, ...run(4, 6, 1)], hardState: { term: 1, vote: 'n1', commit: 6 } });
    const snap = await wal.createSnapshot(2, { voters: ['n1', 'n2'], learners: ['n3'], addresses: { n3: 'h3:1' } }, new Uint8Array([9]));
    expect(snap.meta).toEqual({ index: 2, term: 1, voters: ['n1', 'n2'], learners: ['n3'], addresses: { n3: 'h3:1' } });
    await wal.close();
    const again = await WriteAheadLog.open(dir);
    expect(again.snapshot()).toEqual(snap);
    expect(again.entries(3, 4, Infinity)).toEqual([config]);
    await again.close();
  });
});
