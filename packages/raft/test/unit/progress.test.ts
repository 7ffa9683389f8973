import { describe, expect, it } from 'vitest';
import { Inflights } from '../../src/consensus/inflights.js';
import { Progress } from '../../src/consensus/progress.js';
import { MajorityQuorum } from '../../src/consensus/quorum.js';
import { SeededRandom } from '../../src/consensus/random.js';

describe('Progress', () => {
  it('probe sends one message at a time; a success moves it to replicate', () => {
    const progress = new Progress(5, 4, 0);
    expect(progress.isPaused()).toBe(false);
    progress.sentEntries(1, 5, 10);
    expect(progress.isPaused()).toBe(true);
    expect(progress.maybeUpdate(5)).toBe(true);
    progress.becomeReplicate();
    expect(progress).toMatchObject({ state: 'replicate', next: 6, match: 5 });
  });

  it('replicate pipelines until the in-flight window is full', () => {
    const progress = new Progress(1, 2, 0);
    progress.becomeReplicate();
    progress.sentEntries(1, 1, 10);
    progress.sentEntries(1, 2, 10);
    expect(progress.isPaused()).toBe(true);
    expect(progress.next).toBe(3);
    progress.inflights.freeLE(1);
    expect(progress.isPaused()).toBe(false);
  });

  it('ignores stale rejections and uses the hint otherwise', () => {
    const probe = new Progress(10, 4, 0);
    expect(probe.maybeDecreaseTo(5, 2)).toBe(false); // answers an append we did not just send
    expect(probe.maybeDecreaseTo(9, 3)).toBe(true);
    expect(probe.next).toBe(4);
    const replicate = new Progress(1, 4, 0);
    replicate.maybeUpdate(6);
    replicate.becomeReplicate();
    expect(replicate.maybeDecreaseTo(6, 0)).toBe(false); // at or below match: stale
    expect(replicate.maybeDecreaseTo(8, 0)).toBe(true);
    expect(replicate.next).toBe(7);
  });

  it('snapshot state pauses; leaving it probes from past the snapshot', () => {
    const progress = new Progress(1, 4, 0);
    progress.becomeSnapshot(20);
    expect(progress.isPaused()).toBe(true);
    progress.becomeProbe();
    expect(progress).toMatchObject({ state: 'probe', next: 21 });
  });
});

describe('Inflights', () => {
  it('is bounded by count and by bytes', () => {
    const byCount = new Inflights(2, 0);
    byCount.add(1, 1000);
    expect(byCount.full()).toBe(false);
    byCount.add(2, 1000);
    expect(byCount.full()).toBe(true);
    const byBytes = new Inflights(100, 150);
    byBytes.add(1, 100);
    expect(byBytes.full()).toBe(false);
    byBytes.add(2, 100);
    expect(byBytes.full()).toBe(true);
    byBytes.freeFirst();
    expect(byBytes.full()).toBe(false);
    expect(byBytes.count()).toBe(1);
  });
});

describe('quorum arithmetic', () => {
  const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `v${i}`);

  it('majorities and the committed index', () => {
    expect([1, 2, 3, 4, 5].map((n) => new MajorityQuorum(ids(n)).size)).toEqual([1, 2, 2, 3, 3]);
    const committed = (matches: number[]): number => {
      const quorum = new MajorityQuorum(ids(matches.length));
      return quorum.committedIndex((id) => matches[Number(id.slice(1))]!);
    };
    expect(committed([5, 3, 9])).toBe(5);
    expect(committed([5, 3, 9, 1, 1])).toBe(3);
    expect(committed([7])).toBe(7);
  });

  it('an empty voter set never reaches a quorum', () => {
    const none = new MajorityQuorum([]);
    expect(none.reached(() => true)).toBe(false);
    expect(none.committedIndex(() => 9)).toBe(0);
  });

  it('vote results', () => {
    const quorum = new MajorityQuorum(['a', 'b', 'c']);
    const tally = (votes: Record<string, boolean>): string => quorum.tally((id) => votes[id]);
    expect(tally({ a: true })).toBe('pending');
    expect(tally({ a: true, b: true })).toBe('won');
    expect(tally({ a: true, b: false, c: false })).toBe('lost');
    // Votes from outside the voter set (a learner, a removed node) never count.
    expect(tally({ a: true, x: true, y: true })).toBe('pending');
  });
});

describe('SeededRandom', () => {
  it('is deterministic per seed and stays in range', () => {
    const a = new SeededRandom(42);
    const b = new SeededRandom(42);
    const draws = Array.from({ length: 100 }, () => a.nextInt(10));
    expect(Array.from({ length: 100 }, () => b.nextInt(10))).toEqual(draws);
    expect(draws.every((n) => n >= 0 && n < 10)).toBe(true);
    expect(new Set(draws).size).toBe(10);
    expect(() => a.nextInt(0)).toThrow(RangeError);
  });
});
