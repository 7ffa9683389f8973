import { defineConfig } from 'vitest/config';

// Runs the conformance suite against one deliberately broken backend (see test/broken/).
export default defineConfig({
  test: {
    include: ['test/broken/broken.conformance.ts'],
  },
});
