import { defineConfig } from "vitest/config";

/**
 * Three projects, all run by `npm test`: `unit` (beside the code, no
 * services: seconds; `npm run test:unit`), `integration` (real RabbitMQ,
 * Redis and chDB) and `e2e` (soak, crash and the page in Chromium). The last
 * two check first that the services answer, and fail the run if not.
 */
export default defineConfig({
  test: {
    // Each test file runs in its own process: chDB binds one data directory per process.
    pool: "forks",
    isolate: true,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: "unit", include: ["src/**/*.test.ts"] } },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/global-setup.ts"],
        },
      },
      {
        extends: true,
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          globalSetup: ["test/global-setup.ts"],
        },
      },
    ],
  },
});
