import { SchemaBehindError } from '../../../errors/index.js'
import type { Database } from '../../../ports/storage.js'
import { loadMigrationFiles } from '../sql/migration-files.js'
import { sharedSqlStores } from '../sql/shared-stores.js'
import { createSqlMigrator } from '../sql/migrator.js'
import { createPostgresIngestStore } from './ingest-store.js'
import { PgPool, type PgPoolOptions } from './pool.js'
import { createPostgresUniversalStore } from './universal-store.js'

export interface PostgresDatabase extends Database {
  readonly pool: PgPool
}

const BOOTSTRAP = `CREATE TABLE IF NOT EXISTS schema_migrations (
  "version" integer PRIMARY KEY, "name" text NOT NULL, "applied_at" timestamptz NOT NULL DEFAULT now())`

// pg_advisory_xact_lock key: a fixed 64-bit number for "ingest migrate".
const MIGRATE_LOCK = 7_405_911_220_331

/** Opens a PostgreSQL pool with connect, query and statement timeouts. */
export function openPostgresDatabase(options: PgPoolOptions): PostgresDatabase {
  const pool = new PgPool(options)
  const migrator = createSqlMigrator({
    engine: 'postgres',
    target: pool.target,
    exec: pool,
    files: loadMigrationFiles('postgres'),
    bootstrapSql: BOOTSTRAP,
    lock: async (tx) => {
      await tx.all(`SELECT pg_advisory_xact_lock(${MIGRATE_LOCK})`)
    },
    // A whole file runs as one simple-protocol query inside the transaction.
    runScript: async (tx, sql) => {
      await tx.run(sql)
    },
  })
  return {
    engine: 'postgres',
    target: pool.target,
    pool,
    migrator,
    ...sharedSqlStores(pool),
    ingest: createPostgresIngestStore(pool),
    points: createPostgresUniversalStore(pool),
    ping: async () => {
      await pool.all('SELECT 1')
    },
    assertMigrated: async () => {
      const { pending } = await migrator.status()
      if (pending.length > 0) throw new SchemaBehindError(`PostgreSQL (${pool.target})`, pending.map((p) => `${p.version}_${p.name}`))
    },
    close: () => pool.close(),
  }
}
