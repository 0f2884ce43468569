import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import pg from 'pg'

/** Admin URL of the loopback PostgreSQL (trust auth); override with TEST_POSTGRES_URL. */
export const POSTGRES_ADMIN_URL = process.env['TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres'
export const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379'
export const IN_CI = process.env['CI'] === 'true'

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

/** A fresh database for one test file; `drop()` removes it. */
export async function createTestDatabase(prefix = 'ingest_t'): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  const name = uniqueName(prefix)
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL })
  await admin.connect()
  await admin.query(`CREATE DATABASE "${name}"`)
  await admin.end()
  const url = new URL(POSTGRES_ADMIN_URL)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    name,
    drop: async () => {
      const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL })
      await c.connect()
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
      await c.end()
    },
  }
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
