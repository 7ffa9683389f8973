import { describe } from 'vitest';
import { TEST_SEED_COUNT } from './seeds.js';
import { describeSeedRange } from './seed-range.js';

describe(`deterministic simulation, seeds 1001–${TEST_SEED_COUNT}`, () => {
  describeSeedRange(1001, TEST_SEED_COUNT - 1000);
});
