import { SchemaBehindError } from '../../../errors/index.js'
import type { Database } from '../../../ports/storage.js'
import { loadMigrationFiles } from '../sql/migration-files.js'
import { sharedSqlStores } from '../sql/shared-stores.js'
import { createSqlMigrator } from '../sql/migrator.js'
import { createSqliteIngestStore } from './ingest-store.js'
import { SqliteConnection, type OpenSqliteOptions } from './connection.js'
import { createSqliteUniversalStore } from './universal-store.js'

export interface SqliteDatabase extends Database {
  readonly connection: SqliteConnection
}

const BOOTSTRAP = `CREATE TABLE IF NOT EXISTS schema_migrations (
  "version" INTEGER PRIMARY KEY, "name" TEXT NOT NULL,
  "applied_at" TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))`

/** Opens the embedded database (better-sqlite3, WAL, synchronous=FULL). */
export function openSqliteDatabase(options: OpenSqliteOptions): SqliteDatabase {
  const connection = SqliteConnection.open(options)
  const migrator = createSqlMigrator({
    engine: 'sqlite',
    target: options.path,
    exec: connection,
    files: loadMigrationFiles('sqlite'),
    bootstrapSql: BOOTSTRAP,
    // BEGIN IMMEDIATE already holds the database's write lock: concurrent migrate runs serialise.
    lock: () => Promise.resolve(),
    // A failing script rejects (the executor's throw), as from the other engines.
    runScript: (_tx, sql) =>
      new Promise<void>((resolve) => {
        connection.db.exec(sql)
        resolve()
      }),
  })
  return {
    engine: 'sqlite',
    target: options.path,
    connection,
    migrator,
    ...sharedSqlStores(connection),
    ingest: createSqliteIngestStore(connection),
    points: createSqliteUniversalStore(connection),
    ping: async () => {
      await connection.all('SELECT 1')
    },
    assertMigrated: async () => {
      const { pending } = await migrator.status()
      if (pending.length > 0) throw new SchemaBehindError(`embedded (${options.path})`, pending.map((p) => `${p.version}_${p.name}`))
    },
    close: () => connection.close(),
  }
}
