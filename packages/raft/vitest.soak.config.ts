import { defineConfig } from 'vitest/config';

// The long soak (`pnpm soak`); kept out of `vitest run` and out of test-results.json.
export default defineConfig({
  test: {
    include: ['test/sim/*.soak.ts'],
    reporters: ['default'],
  },
});
