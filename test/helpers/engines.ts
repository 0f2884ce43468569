import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import { openPostgresDatabase } from '../../src/lib/adapters/storage/postgres/index.js'
import { openSqliteDatabase } from '../../src/lib/adapters/storage/sqlite/index.js'
import type { Database } from '../../src/lib/ports/storage.js'
import { engineWanted, ENGINES_VARIABLE, requestedEngines, type TestEngineName } from './engine-selection.js'
import { createTestDatabase, POSTGRES_ADMIN_URL, postgresAvailable, tempDir } from './services.js'

/** The engine kind of a database (kept as the port names it, wherever the port moves the type). */
export type Engine = Database['engine']
export type { TestEngineName } from './engine-selection.js'

/** Enough of an engine's SQL executor for a test to read rows back (`?` placeholders, quoted names). */
export interface SqlReader {
  all(sql: string, params?: ReadonlyArray<string | number | boolean | null | Date>): Promise<Array<Record<string, unknown>>>
}

export interface EngineHandle {
  /** The entry's name: the engine, or `sqlserver-procedure` for SQL Server in procedure mode. */
  name: TestEngineName
  engine: Engine
  db: Database
  /** The engine's connection string or file, for spawning the CLI against the same database. */
  env: Record<string, string>
  /** Raw reads for assertions (test code only; the app reads through its ports). */
  read: SqlReader
  dispose(): Promise<void>
}

export interface EngineOpenOptions {
  /**
   * Open an already migrated database (PostgreSQL: a clone of the run's template; the others run their
   * migrations here). Default false: an empty database, which the migrator contract needs.
   */
  migrated?: boolean
}

export type EngineFactory = (options?: EngineOpenOptions) => Promise<EngineHandle>

export interface AvailableEngine {
  name: TestEngineName
  engine: Engine
  open: EngineFactory
}

export interface AvailableEnginesOptions {
  /**
   * Also SQL Server in procedure mode (IOT_MSSQL_PROCEDURE: readings handed to the legacy procedure, here a
   * stand-in of it) as the entry `sqlserver-procedure`. Only suites of the ingest path ask for it: the
   * mode changes nothing else.
   */
  procedureMode?: boolean
}

const migrate = (db: Database): Promise<unknown> => db.migrator.migrate({ dryRun: false, alterLegacy: false })

/**
 * The one engine list of the suites: SQLite always, PostgreSQL when reachable (always in CI: a missing
 * server fails the run), SQL Server when MSSQL_URL is set (and in procedure mode too when asked for).
 * INGEST_TEST_ENGINES=sqlite,postgres narrows it (see engine-selection.ts); an engine named there that is
 * not available is an error, not a skip.
 */
export async function availableEngines(options: AvailableEnginesOptions = {}): Promise<AvailableEngine[]> {
  const requested = requestedEngines()
  const explicit = (name: TestEngineName): boolean => requested?.has(name) === true
  const out: AvailableEngine[] = []
  if (engineWanted('sqlite')) {
    out.push({
      name: 'sqlite',
      engine: 'sqlite',
      open: async (opts = {}) => {
        const dir = tempDir()
        const db = openSqliteDatabase({ path: join(dir.path, 'ingest.db'), create: true })
        const dispose = async (): Promise<void> => {
          await db.close()
          dir.remove()
        }
        if (opts.migrated) {
          try {
            await migrate(db)
          } catch (err) {
            await dispose()
            throw err
          }
        }
        return { name: 'sqlite', engine: 'sqlite', db, env: { INGEST_DATA_DIR: dir.path }, read: db.connection, dispose }
      },
    })
  }
  if (engineWanted('postgres')) {
    const up = await postgresAvailable()
    if (!up && explicit('postgres')) throw new Error(`${ENGINES_VARIABLE} asks for postgres but ${POSTGRES_ADMIN_URL} is not reachable`)
    if (up) {
      out.push({
        name: 'postgres',
        engine: 'postgres',
        open: async (opts = {}) => {
          const t = await createTestDatabase({ migrated: opts.migrated === true })
          const db = openPostgresDatabase({ url: t.url, max: 4, connectTimeoutMs: 5000, queryTimeoutMs: 20000, statementTimeoutMs: 20000 })
          return { name: 'postgres', engine: 'postgres', db, env: { DATABASE_URL: t.url }, read: db.pool, dispose: async () => { await db.close(); await t.drop() } }
        },
      })
    }
  }
  const mssqlUrl = process.env['MSSQL_URL']
  // MSSQL_URL must point at a SCRATCH database: every open() drops all of its tables, views and
  // procedures, then loads fixtures/sql/sqlserver-legacy.sql (the backend team's tables), so each suite
  // starts from the legacy schema without ours, as `ingest db migrate` finds a real site.
  const sqlServerEntries: Array<{ name: TestEngineName; useProcedure: boolean }> = [{ name: 'sqlserver', useProcedure: false }]
  if (options.procedureMode) sqlServerEntries.push({ name: 'sqlserver-procedure', useProcedure: true })
  for (const { name, useProcedure } of sqlServerEntries) {
    if (!engineWanted(name)) continue
    if (!mssqlUrl) {
      if (explicit(name)) throw new Error(`${ENGINES_VARIABLE} asks for ${name} but MSSQL_URL is not set`)
      continue
    }
    out.push({ name, engine: 'sqlserver', open: (opts = {}) => openSqlServerScratch(mssqlUrl, { name, useProcedure, migrated: opts.migrated === true }) })
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

/**
 * Procedure mode's stand-in for the backend team's dbo.sp_insert_reading_and_check_threshold (its source is
 * not public, reference §5.1): it stores each reading it is handed, so a suite sees which readings the
 * procedure got and how often. Classification, alerts and events are the real procedure's business.
 */
export const PROCEDURE_STAND_IN_SQL = `CREATE PROCEDURE dbo.sp_insert_reading_and_check_threshold
  @p_sensor_id bigint, @p_value decimal(15,5), @p_device_timestamp datetime2 = NULL
AS
BEGIN
  SET NOCOUNT ON;
  INSERT INTO dbo.sensor_readings (sensor_id, value, [timestamp], device_timestamp)
  VALUES (@p_sensor_id, @p_value, SYSUTCDATETIME(), @p_device_timestamp);
END`

async function openSqlServerScratch(url: string, options: { name: TestEngineName; useProcedure: boolean; migrated: boolean }): Promise<EngineHandle> {
  const { openSqlServerDatabase } = await import('../../src/lib/adapters/storage/sqlserver/index.js')
  const { MssqlPool, splitBatches } = await import('../../src/lib/adapters/storage/sqlserver/connection.js')
  const u = new URL(url)
  const config = { url, host: u.hostname, port: Number(u.port || 1433), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password), database: u.pathname.slice(1), encrypt: false, trustServerCertificate: true, useProcedure: options.useProcedure }

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
    if (options.useProcedure) await db.pool.run(PROCEDURE_STAND_IN_SQL)
    if (options.migrated) await migrate(db)
  } catch (err) {
    await dispose()
    throw err
  }
  const env: Record<string, string> = { MSSQL_URL: url }
  if (options.useProcedure) env['IOT_MSSQL_PROCEDURE'] = '1'
  return { name: options.name, engine: 'sqlserver', db, env, read: db.pool, dispose }
}
