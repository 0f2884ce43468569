import type { SqlServerConfig } from '../../../config/index.js'
import { SchemaBehindError } from '../../../errors/index.js'
import type { Database } from '../../../ports/storage.js'
import { loadMigrationFiles } from '../sql/migration-files.js'
import { createSqlIngestTx, createSqlSensorDirectory } from '../sql/ingest-tx.js'
import { createSqlIdempotencyStore } from '../sql/idempotency-store.js'
import { createSqlKeyStore } from '../sql/key-store.js'
import { createSqlRegistryStore } from '../sql/registry-store.js'
import { createSqlStatusStore } from '../sql/status-store.js'
import { describeMssqlTarget, MssqlPool } from './connection.js'
import { createMssqlMigrator } from './migrator.js'

export interface SqlServerDatabase extends Database {
  readonly pool: MssqlPool
}

export interface SqlServerPoolOptions {
  max: number
  connectTimeoutMs: number
  requestTimeoutMs: number
}

/** Opens the SQL Server IoT store (the legacy dbo tables plus our additive objects). */
export function openSqlServerDatabase(config: SqlServerConfig, options: SqlServerPoolOptions): SqlServerDatabase {
  const pool = new MssqlPool(config, options)
  const target = describeMssqlTarget(config)
  const migrator = createMssqlMigrator(pool, loadMigrationFiles('sqlserver'))
  return {
    engine: 'sqlserver',
    target,
    capabilities: { bulkCopy: false, multiProcess: true },
    pool,
    migrator,
    registry: createSqlRegistryStore(pool),
    status: createSqlStatusStore(pool),
    idempotency: createSqlIdempotencyStore(pool),
    keys: createSqlKeyStore(pool),
    ingest: { sensors: createSqlSensorDirectory(pool), transaction: (fn) => pool.transaction((tx) => fn(createSqlIngestTx(tx))) },
    ping: async () => {
      await pool.all('SELECT 1 AS ok')
    },
    assertMigrated: async () => {
      const { pending } = await migrator.status()
      // Legacy-altering migrations are opt-in and may stay pending.
      const required = pending.filter((p) => !/legacy/.test(p.name))
      if (required.length > 0) throw new SchemaBehindError(`SQL Server (${target})`, required.map((p) => `${p.version}_${p.name}`))
    },
    close: () => pool.close(),
  }
}
