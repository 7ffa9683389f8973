import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real files with fsync, real TCP and child processes: on a busy 2-core machine a test that
    // normally takes a second can take ten. Tests wait on conditions, never on this.
    testTimeout: 30_000,
    reporters: ['default', ['json', { outputFile: 'test-results.json' }]],
  },
});
