import { UnavailableError, UserError } from '../../../errors/index.js'
import type { MigrateOptions, MigrateResult, MigrationStatus, Migrator } from '../../../ports/migrator.js'
import type { SqlExecutor } from '../sql/executor.js'
import { loadMigrationFiles, type MigrationFile } from '../sql/migration-files.js'
import { createSqlMigrator } from '../sql/migrator.js'
import { toNumber } from '../sql/row.js'
import { splitBatches } from './connection.js'

/** The legacy dbo tables of the IoT store (reference §5.3). They belong to the backend team. */
export const LEGACY_TABLES = [
  'devices',
  'sensors',
  'sensor_readings',
  'sensor_readings_latest',
  'alert_thresholds',
  'delta_thresholds',
  'alerts',
  'alert_notifications',
  'ml_events',
  'ml_models',
  'predictions',
  'ml_watermarks',
  'device_api_keys',
] as const

export type LegacyTable = (typeof LEGACY_TABLES)[number]

/** Legacy tables that 0001 creates when a site lacks them (no backend entity defines them). */
export const LEGACY_TABLES_CREATED_IF_MISSING: readonly LegacyTable[] = ['delta_thresholds', 'ml_watermarks']

/** The legacy tables `db migrate` needs and will not create: status reports the missing ones. */
export const REQUIRED_LEGACY_TABLES: readonly LegacyTable[] = LEGACY_TABLES.filter((t) => !LEGACY_TABLES_CREATED_IF_MISSING.includes(t))

/** First line of a migration file that alters legacy tables (indexes): it runs only with --alter-legacy. */
export const ALTERS_LEGACY_MARKER = '-- alters-legacy'

export function altersLegacy(file: Pick<MigrationFile, 'sql'>): boolean {
  const first = file.sql.split(/\r?\n/).find((l) => l.trim() !== '')
  return first?.trim().toLowerCase() === ALTERS_LEGACY_MARKER
}

export const MSSQL_BOOTSTRAP_SQL = `IF OBJECT_ID('dbo.schema_migrations') IS NULL CREATE TABLE dbo.schema_migrations (version int PRIMARY KEY, name nvarchar(200) NOT NULL, applied_at datetime2 NOT NULL DEFAULT SYSUTCDATETIME())`

/**
 * Owned by the transaction, so COMMIT or ROLLBACK releases it and a crashed migrate never leaves it held.
 * sp_getapplock reports failure through its return value (not an error), hence the SELECT.
 */
export const MSSQL_LOCK_SQL = `DECLARE @result int; EXEC @result = sp_getapplock @Resource = 'ingest:migrate', @LockMode = 'Exclusive', @LockOwner = 'Transaction', @LockTimeout = 60000; SELECT @result AS result`

const LOCK_FAILURES: Record<number, string> = {
  [-1]: 'timed out after 60 s: is another "ingest db migrate" running?',
  [-2]: 'the request was cancelled',
  [-3]: 'chosen as a deadlock victim',
  [-999]: 'parameter or call error',
}

export const MISSING_LEGACY_TABLES_SQL = `SELECT t.name FROM (VALUES ${REQUIRED_LEGACY_TABLES.map((t) => `(N'${t}')`).join(', ')}) AS t(name) WHERE OBJECT_ID(N'dbo.' + t.name, N'U') IS NULL ORDER BY t.name`

async function missingLegacyTables(exec: SqlExecutor): Promise<string[]> {
  const rows = await exec.all<{ name: unknown }>(MISSING_LEGACY_TABLES_SQL)
  return rows.map((r) => String(r.name))
}

/** A Migrator whose opt-in (legacy-altering) migrations a caller can tell apart. */
export interface MssqlMigrator extends Migrator {
  /** Versions that alter legacy tables: pending is normal for them without --alter-legacy (assertMigrated ignores them). */
  readonly optionalVersions: ReadonlySet<number>
}

/**
 * The SQL Server migrator: the shared forward-only migrator over GO-separated scripts, under sp_getapplock.
 * Files marked `-- alters-legacy` are left out of a run without `alterLegacy` (they stay pending and status
 * lists them), and a database that lacks the backend team's tables is refused before anything runs.
 */
export function createMssqlMigrator(pool: SqlExecutor & { readonly target: string }, files: readonly MigrationFile[] = loadMigrationFiles('sqlserver')): MssqlMigrator {
  const optionalVersions = new Set(files.filter(altersLegacy).map((f) => f.version))
  const make = (subset: readonly MigrationFile[]): Migrator =>
    createSqlMigrator({
      engine: 'sqlserver',
      target: pool.target,
      exec: pool,
      files: subset,
      bootstrapSql: MSSQL_BOOTSTRAP_SQL,
      lock: async (tx) => {
        const rows = await tx.all(MSSQL_LOCK_SQL)
        const result = toNumber(rows[0]?.['result'])
        if (result < 0) {
          throw new UnavailableError(`could not take the migration lock on SQL Server at ${pool.target}: sp_getapplock returned ${result} (${LOCK_FAILURES[result] ?? 'unknown failure'})`, {
            code: 'MIGRATION_LOCKED',
          })
        }
      },
      // Batches in order, each its own request, as sqlcmd runs a script: inside the one migrate transaction.
      runScript: async (tx, sql) => {
        for (const batch of splitBatches(sql)) await tx.run(batch)
      },
      inspect: async (exec) => ({ missingLegacyTables: await missingLegacyTables(exec) }),
      prepare: (file, options) => {
        // The run without alterLegacy never sees these files (see migrate below); refuse rather than alter legacy tables by mistake.
        if (!options.alterLegacy && optionalVersions.has(file.version)) throw new UserError('ALTER_LEGACY_REQUIRED', `migration ${file.version}_${file.name} alters legacy tables and needs --alter-legacy`)
        return file
      },
    })
  const all = make(files)

  return {
    optionalVersions,
    status: () => all.status(),
    async migrate(options: MigrateOptions): Promise<MigrateResult> {
      if (!options.dryRun) {
        const missing = await missingLegacyTables(pool)
        if (missing.length > 0) {
          throw new UserError('SQLSERVER_LEGACY_TABLES_MISSING', `the SQL Server database at ${pool.target} lacks the legacy IoT tables ${missing.map((t) => `dbo.${t}`).join(', ')}`, {
            suggestions: ['point MSSQL_URL (or DB_NAME) at the IoT database: these tables belong to the backend team and "ingest db migrate" never creates them'],
            details: { missingLegacyTables: missing },
          })
        }
      }
      const runnable = options.alterLegacy ? files : files.filter((f) => !optionalVersions.has(f.version))
      const result = await make(runnable).migrate(options)
      // The subset's status would hide the skipped files: report them as pending.
      const applied = new Set(result.applied.map((a) => a.version))
      const pending: MigrationStatus['pending'] = files.filter((f) => !applied.has(f.version)).map(({ version, name }) => ({ version, name }))
      return { ...result, pending }
    },
  }
}
