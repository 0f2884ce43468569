import type { SqlServerConfig } from '../../../config/index.js'
import { SchemaBehindError, UserError } from '../../../errors/index.js'
import type { Database } from '../../../ports/storage.js'
import type { UniversalStore } from '../../../ports/universal-store.js'
import { loadMigrationFiles } from '../sql/migration-files.js'
import { sharedSqlStores } from '../sql/shared-stores.js'
import { describeMssqlTarget, MssqlPool } from './connection.js'
import { createSqlServerIngestStore, PROCEDURE_NAME } from './ingest-store.js'
import { createMssqlMigrator } from './migrator.js'

const universalOnly = (): Promise<never> => Promise.reject(new UserError('UNIVERSAL_ON_SQLSERVER', 'SQL Server holds only the IoT store: the universal store (data points, stream alerts, audit) runs on SQLite or PostgreSQL'))
/** SQL Server is never the universal store (config selects SQLite or PostgreSQL for it). */
const NO_UNIVERSAL_STORE: UniversalStore = { flushConcurrency: 1, optimisticInsert: false, transaction: universalOnly, audit: universalOnly, seriesStatus: universalOnly }

export interface SqlServerDatabase extends Database {
  readonly pool: MssqlPool
}

export interface SqlServerPoolOptions {
  max: number
  connectTimeoutMs: number
  requestTimeoutMs: number
}

export const PROCEDURE_EXISTS_SQL = `SELECT 1 AS found WHERE OBJECT_ID(N'${PROCEDURE_NAME}', N'P') IS NOT NULL`

/** Opens the SQL Server IoT store (the legacy dbo tables plus our additive objects). */
export function openSqlServerDatabase(config: SqlServerConfig, options: SqlServerPoolOptions): SqlServerDatabase {
  const pool = new MssqlPool(config, options)
  const target = describeMssqlTarget(config)
  const migrator = createMssqlMigrator(pool, loadMigrationFiles('sqlserver'))
  return {
    engine: 'sqlserver',
    target,
    pool,
    migrator,
    ...sharedSqlStores(pool),
    ingest: createSqlServerIngestStore(pool, { useProcedure: config.useProcedure }),
    points: NO_UNIVERSAL_STORE,
    ping: async () => {
      await pool.all('SELECT 1 AS ok')
    },
    assertMigrated: async () => {
      const { pending } = await migrator.status()
      // Legacy-altering migrations (--alter-legacy) are opt-in and may stay pending.
      const required = pending.filter((p) => !migrator.optionalVersions.has(p.version))
      if (required.length > 0) throw new SchemaBehindError(`SQL Server (${target})`, required.map((p) => `${p.version}_${p.name}`))
      if (config.useProcedure) {
        const rows = await pool.all(PROCEDURE_EXISTS_SQL)
        if (rows.length === 0) {
          throw new UserError('SQLSERVER_PROCEDURE_MISSING', `IOT_MSSQL_PROCEDURE is on but ${PROCEDURE_NAME} does not exist in the SQL Server database at ${target}`, {
            suggestions: ['create the procedure (it belongs to the backend team), point MSSQL_URL/DB_NAME at the IoT database, or unset IOT_MSSQL_PROCEDURE to use the rules engine'],
          })
        }
      }
    },
    close: () => pool.close(),
  }
}
