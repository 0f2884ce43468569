import { defineConfig } from 'vitest/config'

// Tiers by folder: unit (no network), contract (one suite per port, every available engine),
// integration (real PostgreSQL, Redis, Mosquitto on loopback), commands (through oclif, --json).
// pg-template.ts migrates one PostgreSQL template per run that createTestDatabase({ migrated: true }) clones.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 20_000 } },
      { test: { name: 'contract', include: ['test/contract/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 60_000, globalSetup: ['test/helpers/pg-template.ts'] } },
      { test: { name: 'integration', include: ['test/integration/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 120_000, globalSetup: ['test/helpers/build.ts', 'test/helpers/pg-template.ts'] } },
      { test: { name: 'commands', include: ['test/commands/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 60_000, globalSetup: ['test/helpers/build.ts', 'test/helpers/pg-template.ts'] } },
      { test: { name: 'fault', include: ['test/fault/**/*.test.ts'], testTimeout: 300_000, hookTimeout: 120_000, fileParallelism: false, globalSetup: ['test/helpers/build.ts'] } },
    ],
  },
})
