import type { TestProject } from 'vitest/node'

import { engineWanted } from './engine-selection.js'
import { adminQuery, databaseUrl, migratePostgres, PG_TEMPLATE_KEY, postgresAvailable, uniqueName } from './services.js'

/**
 * vitest globalSetup: migrates one PostgreSQL template database per run (per project), which
 * `createTestDatabase({ migrated: true })` clones for each test file instead of running every
 * migration again. Dropped at teardown. In CI an unreachable PostgreSQL fails the run here.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Not wanted (INGEST_TEST_ENGINES without postgres) or not reachable outside CI: no template, and
  // the PostgreSQL suites do not run.
  if (!engineWanted('postgres') || !(await postgresAvailable())) {
    project.provide(PG_TEMPLATE_KEY, null)
    return () => Promise.resolve()
  }
  const name = uniqueName('ingest_tpl')
  await adminQuery(`CREATE DATABASE "${name}"`)
  const drop = async (): Promise<void> => {
    await adminQuery(`ALTER DATABASE "${name}" WITH IS_TEMPLATE false`).catch(() => undefined)
    await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
  }
  try {
    await migratePostgres(databaseUrl(name))
    // No connections from now on: CREATE DATABASE ... TEMPLATE refuses a template someone is connected to.
    await adminQuery(`ALTER DATABASE "${name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`)
  } catch (err) {
    await drop()
    throw err
  }
  project.provide(PG_TEMPLATE_KEY, name)
  return drop
}
