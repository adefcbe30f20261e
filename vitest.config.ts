import { defineConfig } from 'vitest/config';

// The whole suite runs on SQLite; with TEST_DATABASE_URL (a PostgreSQL server URL whose role
// may create databases) it runs a second time on PostgreSQL, each suite in a database of its own.
const postgres = process.env.TEST_DATABASE_URL;

const shared = {
  include: ['test/**/*.test.ts'],
  testTimeout: 30_000,
  hookTimeout: 60_000,
};

export default defineConfig({
  test: {
    // Every suite starts its own server on its own database; two at a time fit two cores.
    maxWorkers: 2,
    projects: [
      { test: { ...shared, name: 'sqlite', env: { TEST_DB_PROVIDER: 'sqlite' } } },
      ...(postgres ? [{ test: { ...shared, name: 'postgresql', env: { TEST_DB_PROVIDER: 'postgresql' } } }] : []),
    ],
  },
});
