import { expect, it } from 'vitest';
import { runSoak } from './soak.js';

it(
  'soak: every seed passes every invariant',
  () => {
    const summary = runSoak(process.env, (line) => process.stdout.write(`${line}\n`));
    // A broken variant is expected to fail; the real core must not.
    if (summary.variant === null) expect(summary.failing, `failing seeds: ${summary.failing.join(', ')}`).toEqual([]);
  },
  24 * 3600_000,
);
