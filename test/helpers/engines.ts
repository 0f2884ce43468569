import { readFileSync } from 'node:fs'
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
    // MSSQL_URL must point at a SCRATCH database: every open() drops all of its tables, views and
    // procedures, then loads fixtures/sql/sqlserver-legacy.sql (the backend team's tables), so each suite
    // starts from the legacy schema without ours, as `ingest db migrate` finds a real site.
    const url = process.env['MSSQL_URL']
    out.push({ engine: 'sqlserver', open: () => openSqlServerScratch(url) })
  }
  return out
}

/** Drops every user object of the scratch database (foreign keys first). Refuses the system databases. */
const MSSQL_WIPE_SQL = `DECLARE @db sysname = DB_NAME();
IF @db IN (N'master', N'model', N'msdb', N'tempdb')
BEGIN
  RAISERROR(N'MSSQL_URL points at the system database %s: the contract suites wipe their database, point it at a scratch one', 16, 1, @db);
  RETURN;
END
DECLARE @sql nvarchar(max) = N'';
SELECT @sql = @sql + N'ALTER TABLE ' + QUOTENAME(SCHEMA_NAME(t.schema_id)) + N'.' + QUOTENAME(t.name) + N' DROP CONSTRAINT ' + QUOTENAME(f.name) + N'; '
  FROM sys.foreign_keys f JOIN sys.tables t ON t.object_id = f.parent_object_id;
EXEC sys.sp_executesql @sql;
SET @sql = N'';
SELECT @sql = @sql + N'DROP VIEW ' + QUOTENAME(SCHEMA_NAME(schema_id)) + N'.' + QUOTENAME(name) + N'; ' FROM sys.views WHERE is_ms_shipped = 0;
SELECT @sql = @sql + N'DROP PROCEDURE ' + QUOTENAME(SCHEMA_NAME(schema_id)) + N'.' + QUOTENAME(name) + N'; ' FROM sys.procedures WHERE is_ms_shipped = 0;
SELECT @sql = @sql + N'DROP TABLE ' + QUOTENAME(SCHEMA_NAME(schema_id)) + N'.' + QUOTENAME(name) + N'; ' FROM sys.tables WHERE is_ms_shipped = 0;
EXEC sys.sp_executesql @sql;`

/**
 * Contract files run in parallel and share the one scratch database: each holds this lock (an open
 * transaction on its own connection) from wipe to dispose, so suites take turns instead of wiping each
 * other's tables. Runs longer than the wait fail with a message; then use --no-file-parallelism.
 */
const MSSQL_SCRATCH_LOCK_SQL = `DECLARE @r int; EXEC @r = sp_getapplock @Resource = 'ingest:contract-scratch', @LockMode = 'Exclusive', @LockOwner = 'Transaction', @LockTimeout = 50000; SELECT @r AS result`

async function openSqlServerScratch(url: string): Promise<EngineHandle> {
  const { openSqlServerDatabase } = await import('../../src/lib/adapters/storage/sqlserver/index.js')
  const { MssqlPool, splitBatches } = await import('../../src/lib/adapters/storage/sqlserver/connection.js')
  const u = new URL(url)
  const config = { url, host: u.hostname, port: Number(u.port || 1433), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password), database: u.pathname.slice(1), encrypt: false, trustServerCertificate: true, useProcedure: false }

  const holder = new MssqlPool(config, { max: 1, connectTimeoutMs: 5000, requestTimeoutMs: 60000 })
  let release = (): void => undefined
  const released = new Promise<void>((resolve) => (release = resolve))
  let locked = (): void => undefined
  const acquired = new Promise<void>((resolve) => (locked = resolve))
  const held = holder.transaction(async (tx) => {
    const result = Number((await tx.all(MSSQL_SCRATCH_LOCK_SQL))[0]?.['result'])
    if (result < 0) throw new Error(`another test file holds the scratch SQL Server database (sp_getapplock ${result}): run the contract project with --no-file-parallelism`)
    locked()
    await released
  })
  try {
    await Promise.race([acquired, held])
  } catch (err) {
    await holder.close()
    throw err
  }

  const db = openSqlServerDatabase(config, { max: 4, connectTimeoutMs: 5000, requestTimeoutMs: 20000 })
  const dispose = async (): Promise<void> => {
    await db.close()
    release()
    await held.catch(() => undefined)
    await holder.close()
  }
  try {
    await db.pool.run(MSSQL_WIPE_SQL)
    const fixture = readFileSync(new URL('../../fixtures/sql/sqlserver-legacy.sql', import.meta.url), 'utf8')
    for (const batch of splitBatches(fixture)) await db.pool.run(batch)
  } catch (err) {
    await dispose()
    throw err
  }
  return { engine: 'sqlserver', db, env: { MSSQL_URL: url }, dispose }
}
