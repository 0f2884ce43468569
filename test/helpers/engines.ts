import { join } from 'node:path'

import { openPostgresDatabase } from '../../src/lib/adapters/storage/postgres/index.js'
import { openSqliteDatabase } from '../../src/lib/adapters/storage/sqlite/index.js'
import type { Database, Engine } from '../../src/lib/ports/storage.js'
import { createTestDatabase, postgresAvailable, tempDir } from './services.js'

export interface EngineHandle {
  engine: Engine
  db: Database
  /** The engine's connection string or file, for spawning the CLI against the same database. */
  env: Record<string, string>
  dispose(): Promise<void>
}

export type EngineFactory = () => Promise<EngineHandle>

/**
 * The engines a contract suite loops over: SQLite always, PostgreSQL when reachable (always in CI),
 * SQL Server when MSSQL_URL is set.
 */
export async function availableEngines(): Promise<Array<{ engine: Engine; open: EngineFactory }>> {
  const out: Array<{ engine: Engine; open: EngineFactory }> = [
    {
      engine: 'sqlite',
      open: async () => {
        const dir = tempDir()
        const db = openSqliteDatabase({ path: join(dir.path, 'ingest.db'), create: true })
        return { engine: 'sqlite', db, env: { INGEST_DATA_DIR: dir.path }, dispose: async () => { await db.close(); dir.remove() } }
      },
    },
  ]
  if (await postgresAvailable()) {
    out.push({
      engine: 'postgres',
      open: async () => {
        const t = await createTestDatabase()
        const db = openPostgresDatabase({ url: t.url, max: 4, connectTimeoutMs: 5000, queryTimeoutMs: 20000, statementTimeoutMs: 20000 })
        return { engine: 'postgres', db, env: { DATABASE_URL: t.url }, dispose: async () => { await db.close(); await t.drop() } }
      },
    })
  }
  if (process.env['MSSQL_URL']) {
    const url = process.env['MSSQL_URL']
    out.push({
      engine: 'sqlserver',
      open: async () => {
        const { openSqlServerDatabase } = await import('../../src/lib/adapters/storage/sqlserver/index.js')
        const u = new URL(url)
        const db = openSqlServerDatabase(
          { url, host: u.hostname, port: Number(u.port || 1433), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password), database: u.pathname.slice(1), encrypt: false, trustServerCertificate: true, useProcedure: false },
          { max: 4, connectTimeoutMs: 5000, requestTimeoutMs: 20000 },
        )
        return { engine: 'sqlserver', db, env: { MSSQL_URL: url }, dispose: () => db.close() }
      },
    })
  }
  return out
}
