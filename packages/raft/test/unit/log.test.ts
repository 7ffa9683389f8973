import { describe, expect, it } from 'vitest';
import { LogCompactedError, LogUnavailableError, RaftProtocolError } from '../../src/consensus/errors.js';
import { MemoryLogStorage } from '../../src/consensus/storage.js';
import { RaftLog } from '../../src/consensus/log.js';
import { entries, storageWith } from '../support/node.js';

describe('RaftLog', () => {
  it('finds the first conflicting or new entry, ignoring entries it already holds', () => {
    const log = new RaftLog(storageWith([1, 2, 3]));
    expect(log.findConflict(entries([1, 2], 1))).toBe(0);
    expect(log.findConflict(entries([2, 3], 2))).toBe(0);
    expect(log.findConflict(entries([2, 3, 4], 2))).toBe(4);
    expect(log.findConflict(entries([4, 4], 2))).toBe(2);
  });

  it('findConflictByTerm skips back to the last index of a term no newer than asked', () => {
    const log = new RaftLog(storageWith([1, 1, 3, 3, 5]));
    expect(log.findConflictByTerm(5, 4)).toEqual({ index: 4, term: 3 });
    expect(log.findConflictByTerm(5, 2)).toEqual({ index: 2, term: 1 });
    expect(log.findConflictByTerm(9, 5)).toEqual({ index: 5, term: 5 });
    expect(log.findConflictByTerm(5, 0)).toEqual({ index: 0, term: 0 });
  });

  it('refuses to rewrite committed entries', () => {
    const log = new RaftLog(storageWith([1, 1, 1]));
    log.commitTo(2);
    expect(() => log.append(entries([2], 2))).toThrow(RaftProtocolError);
    expect(() => log.commitTo(9)).toThrow(/beyond the last index/);
  });

  it('applies the up-to-date rule on (last term, last index)', () => {
    const log = new RaftLog(storageWith([1, 2]));
    expect(log.isUpToDate(2, 2)).toBe(true);
    expect(log.isUpToDate(1, 2)).toBe(false);
    expect(log.isUpToDate(9, 1)).toBe(false);
    expect(log.isUpToDate(1, 3)).toBe(true);
  });

  it('reads across storage and the unstable tail, within a byte limit', () => {
    const log = new RaftLog(storageWith([1, 1]));
    log.append(entries([2, 2], 3));
    expect(log.slice(1, 5, Number.MAX_SAFE_INTEGER).map((e) => e.index)).toEqual([1, 2, 3, 4]);
    expect(log.slice(1, 5, 1).map((e) => e.index)).toEqual([1]);
    expect(log.slice(2, 4, 60).length).toBeGreaterThanOrEqual(1);
    expect(log.term(4)).toBe(2);
    expect(log.term(5)).toBeNull();
  });

  it('forgets unstable entries once durable, unless they were replaced meanwhile', () => {
    const log = new RaftLog(new MemoryLogStorage());
    log.append(entries([1, 1, 1]));
    log.append(entries([2], 2)); // replaces 2 and 3 before the first write finished
    log.stableTo(3, 1); // the write of the old entry 3 completes: nothing is stable yet
    expect(log.unstable.entries.map((e) => `${e.index}@${e.term}`)).toEqual(['1@1', '2@2']);
    log.stableTo(2, 2);
    expect(log.unstable.entries).toEqual([]);
  });
});

describe('MemoryLogStorage', () => {
  it('compacts, snapshots and reports compacted and unavailable ranges with typed errors', () => {
    const storage = storageWith([1, 1, 2, 2]);
    storage.createSnapshot(3, ['n1'], new Uint8Array([7]));
    storage.compact(3);
    expect(storage.firstIndex()).toBe(4);
    expect(storage.term(3)).toBe(2);
    expect(() => storage.term(2)).toThrow(LogCompactedError);
    expect(() => storage.entries(2, 4, 100)).toThrow(LogCompactedError);
    expect(() => storage.entries(4, 9, 100)).toThrow(LogUnavailableError);
    expect(() => storage.compact(4)).toThrow(/snapshot only covers 3/);
    expect(storage.append(entries([3], 4))).toEqual({ truncatedFrom: 4 });
    expect(() => storage.append(entries([3], 9))).toThrow(/gap/);
  });
});
