import { expect, it } from 'vitest';
import { reproduceCommand, simulate } from '../sim/simulation.js';
import { TEST_SEED_CHUNK } from './seeds.js';

/** Registers one test per chunk of seeds; each seed must finish with no violation. */
export function describeSeedRange(first: number, count: number): void {
  for (let start = first; start < first + count; start += TEST_SEED_CHUNK) {
    const end = Math.min(start + TEST_SEED_CHUNK, first + count) - 1;
    it(`seeds ${start}–${end}: safety invariants, liveness after healing, linearizable histories`, () => {
      const failures: string[] = [];
      let committed = 0;
      for (let seed = start; seed <= end; seed++) {
        const result = simulate({ seed });
        committed += result.stats.committed;
        if (result.violations.length > 0) {
          failures.push(`seed ${seed}: ${result.violations.join('\n  ')}\n  reproduce: ${reproduceCommand(seed)}`);
        }
      }
      expect(failures, failures.join('\n')).toEqual([]);
      // The runs must actually do work, or "no violation" means nothing.
      expect(committed).toBeGreaterThan((end - start + 1) * 5);
    }, 180_000);
  }
}
