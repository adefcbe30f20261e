import { defineConfig } from 'vitest/config';

// The unit tier (test/unit/): pure rules, no server, well under a second. The front-door suites
// run on SQLite and, with TEST_DATABASE_URL (a PostgreSQL server URL whose role may create
// databases), a second time on PostgreSQL, each suite in a database of its own.
const postgres = process.env.TEST_DATABASE_URL;
// With TEST_REDIS_URL too, a third time on PostgreSQL with sessions, interactions and codes in
// Redis (EPHEMERAL_STORE=redis).
const redis = process.env.TEST_REDIS_URL;

const frontDoor = {
  include: ['test/**/*.test.ts'],
  exclude: ['test/unit/**'],
  testTimeout: 30_000,
  hookTimeout: 60_000,
};

export default defineConfig({
  test: {
    // Every suite starts its own server on its own database; two at a time fit two cores.
    maxWorkers: 2,
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { test: { ...frontDoor, name: 'sqlite', env: { TEST_DB_PROVIDER: 'sqlite' } } },
      ...(postgres ? [{ test: { ...frontDoor, name: 'postgresql', env: { TEST_DB_PROVIDER: 'postgresql' } } }] : []),
      ...(postgres && redis ? [{ test: { ...frontDoor, name: 'postgresql+redis', env: { TEST_DB_PROVIDER: 'postgresql', TEST_EPHEMERAL_STORE: 'redis' } } }] : []),
    ],
  },
});
