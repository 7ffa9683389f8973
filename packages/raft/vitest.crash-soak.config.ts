import { defineConfig } from 'vitest/config';

// The long crash soak (real member processes under kill -9); kept out of `vitest run` and out of test-results.json.
// CRASH_ROUNDS=50 npx vitest run --config vitest.crash-soak.config.ts
export default defineConfig({
  test: {
    include: ['test/crash/*.soak.ts'],
    reporters: ['default'],
  },
});
