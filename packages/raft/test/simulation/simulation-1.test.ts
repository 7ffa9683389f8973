import { describe } from 'vitest';
import { describeSeedRange } from './seed-range.js';

describe('deterministic simulation, seeds 1–1000', () => {
  describeSeedRange(1, 1000);
});
