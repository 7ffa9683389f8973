import { describe, expect, it } from 'vitest';
import { simulate } from '../sim/simulation.js';

describe('simulation determinism', () => {
  it('replays a seed exactly: same trace hash, same statistics', () => {
    for (const seed of [7, 42, 1234]) {
      const first = simulate({ seed });
      const second = simulate({ seed });
      expect(second.traceHash).toBe(first.traceHash);
      expect(second.stats).toEqual(first.stats);
    }
  });

  it('different seeds give different runs', () => {
    const hashes = new Set([1, 2, 3, 4, 5].map((seed) => simulate({ seed }).traceHash));
    expect(hashes.size).toBe(5);
  });

  it('injects every kind of fault across the test seeds', () => {
    const totals = {
      crashes: 0,
      tornWrites: 0,
      pauses: 0,
      partitions: 0,
      messagesDropped: 0,
      messagesDuplicated: 0,
      snapshotsSent: 0,
      compactions: 0,
      abandoned: 0,
    };
    for (let seed = 1; seed <= 60; seed++) {
      const { stats } = simulate({ seed });
      for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += stats[key];
    }
    for (const [kind, count] of Object.entries(totals)) expect(count, kind).toBeGreaterThan(0);
  });

  it('runs both fault schedules and both cluster sizes', () => {
    expect(simulate({ seed: 3, schedule: 'leader-churn', nodes: 5 }).violations).toEqual([]);
    expect(simulate({ seed: 3, schedule: 'mixed', nodes: 3 }).violations).toEqual([]);
  });
});
