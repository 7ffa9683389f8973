import { describe, expect, it } from 'vitest';
import { brokenVariants, type BrokenVariantName } from '../sim/broken-variants.js';
import { simulate } from '../sim/simulation.js';
import { TEST_SEED_COUNT } from './seeds.js';

/** The first seed in the test range whose run breaks an invariant, with what broke. */
function firstFailingSeed(name: BrokenVariantName): { seed: number; violation: string } | null {
  for (let seed = 1; seed <= TEST_SEED_COUNT; seed++) {
    const result = simulate({ seed, createNode: brokenVariants[name], stopAtFirstViolation: true });
    const violation = result.violations[0];
    if (violation !== undefined) return { seed, violation };
  }
  return null;
}

describe('the simulation has teeth: each deliberately broken core is caught within the test seeds', () => {
  const cases: [BrokenVariantName, RegExp][] = [
    ['vote-without-log-check', /leader completeness|state machine safety|committed entry lost|linearizability/],
    ['commit-older-term', /leader completeness|state machine safety|committed entry lost|linearizability/],
    ['truncate-on-stale-append', /committed entry lost|leader completeness|state machine safety|threw|quorum/],
    ['vote-not-persisted', /double vote|election safety/],
    // The membership rules (the simulation's fault schedule adds learners, promotes, removes and transfers).
    ['two-changes-in-flight', /one change at a time|election safety|leader completeness|state machine safety|linearizability/],
    ['removed-member-counted', /quorum|leader completeness|state machine safety|committed entry lost|linearizability/],
    ['learner-counted-as-voter', /quorum|leader completeness|state machine safety|committed entry lost|linearizability/],
  ];
  for (const [name, expected] of cases) {
    it(
      name,
      () => {
        const caught = firstFailingSeed(name);
        expect(caught, `${name} survived seeds 1..${TEST_SEED_COUNT}`).not.toBeNull();
        expect(caught?.violation).toMatch(expected);
        // The same seed is clean with the real core: the failure is the variant's, not the harness's.
        expect(simulate({ seed: caught!.seed }).violations).toEqual([]);
        console.log(`${name}: caught at seed ${caught!.seed}: ${caught!.violation.split('\n')[0]}`);
      },
      180_000,
    );
  }
});
