import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import pg from 'pg'
import { inject } from 'vitest'

/** Admin URL of the loopback PostgreSQL (trust auth); override with TEST_POSTGRES_URL. */
export const POSTGRES_ADMIN_URL = process.env['TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres'
export const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379'
export const IN_CI = process.env['CI'] === 'true'

/** What test/helpers/pg-template.ts provides to the workers: the run's migrated template, or null. */
export const PG_TEMPLATE_KEY = 'ingestPgTemplate'

declare module 'vitest' {
  export interface ProvidedContext {
    ingestPgTemplate: string | null
  }
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`
}

async function reachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 })
  try {
    await client.connect()
    await client.query('SELECT 1')
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => undefined)
  }
}

let postgresUp: Promise<boolean> | undefined

/**
 * Whether PostgreSQL tests run. With CI=true a missing PostgreSQL is a failure, never a skip.
 */
export async function postgresAvailable(): Promise<boolean> {
  postgresUp ??= reachable(POSTGRES_ADMIN_URL)
  const up = await postgresUp
  if (!up && IN_CI) throw new Error(`PostgreSQL is required in CI but ${POSTGRES_ADMIN_URL} is not reachable`)
  return up
}

export interface TestDatabase {
  url: string
  name: string
  drop: () => Promise<void>
}

export interface CreateTestDatabaseOptions {
  /**
   * true: a database already migrated to the current postgres migrations, cloned from the run's
   * template (test/helpers/pg-template.ts; migrated here when the project has no such globalSetup).
   * false (the default): an empty database, for suites that test migrating one (the migrator
   * contract, `ingest db migrate`).
   */
  migrated?: boolean
  prefix?: string
}

/** The URL of database `name` on the admin server. */
export function databaseUrl(name: string): string {
  const url = new URL(POSTGRES_ADMIN_URL)
  url.pathname = `/${name}`
  return url.toString()
}

/** Runs one statement on the admin database (CREATE/DROP DATABASE cannot run inside a transaction). */
export async function adminQuery(sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL })
  await admin.connect()
  try {
    await admin.query(sql)
  } finally {
    await admin.end()
  }
}

/** Applies the postgres migrations to the database at `url` (the template, or a fallback clone). */
export async function migratePostgres(url: string): Promise<void> {
  const { openPostgresDatabase } = await import('../../src/lib/adapters/storage/postgres/index.js')
  const db = openPostgresDatabase({ url, max: 1, connectTimeoutMs: 5000, queryTimeoutMs: 60_000, statementTimeoutMs: 60_000, applicationName: 'ingest-test-migrate' })
  try {
    await db.migrator.migrate({ dryRun: false, alterLegacy: false })
  } finally {
    await db.close()
  }
}

/** The template database the globalSetup of this project migrated, if it has one. */
function providedTemplate(): string | null {
  try {
    return inject(PG_TEMPLATE_KEY) ?? null
  } catch {
    // Outside a vitest worker (a globalSetup, a script): no template.
    return null
  }
}

/**
 * A fresh database for one test file; `drop()` removes it. With `migrated`, a clone of the run's
 * migrated template (`CREATE DATABASE ... TEMPLATE`: a file copy instead of running every migration
 * again per file).
 */
export async function createTestDatabase(options: CreateTestDatabaseOptions = {}): Promise<TestDatabase> {
  const name = uniqueName(options.prefix ?? 'ingest_t')
  const template = options.migrated ? providedTemplate() : null
  await adminQuery(template ? `CREATE DATABASE "${name}" TEMPLATE "${template}"` : `CREATE DATABASE "${name}"`)
  const url = databaseUrl(name)
  const drop = async (): Promise<void> => adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
  if (options.migrated && !template) {
    try {
      await migratePostgres(url)
    } catch (err) {
      await drop()
      throw err
    }
  }
  return { url, name, drop }
}

/** A temporary folder (embedded database, DLQ file); `remove()` deletes it. */
export function tempDir(prefix = 'ingest-test-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix))
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) }
}

let redisUp: Promise<boolean> | undefined

/** Whether Redis tests run. With CI=true a missing Redis is a failure, never a skip. */
export async function redisAvailable(): Promise<boolean> {
  redisUp ??= (async () => {
    const { createRedisClient } = await import('../../src/lib/adapters/redis/client.js')
    const probe = createRedisClient(REDIS_URL, { keyPrefix: '', connectTimeoutMs: 1000 })
    try {
      await probe.connect()
      return (await probe.ping()) === 'PONG'
    } catch {
      return false
    } finally {
      probe.disconnect()
    }
  })()
  const up = await redisUp
  if (!up && IN_CI) throw new Error(`Redis is required in CI but ${REDIS_URL} is not reachable`)
  return up
}
