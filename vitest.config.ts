import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Every suite starts its own server on its own database; two at a time fit two cores.
    maxWorkers: 2,
  },
});
