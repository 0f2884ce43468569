import { join } from 'node:path'

import type { Config } from '../config/index.js'
import type { Logger } from '../log/index.js'
import { type Clock, systemClock } from '../ports/clock.js'
import type { Engine } from '../ports/engine.js'
import type { Database } from '../ports/storage.js'

/** What every use-case receives: configuration, logger, clock, and the open stores. */
export interface AppContext {
  readonly config: Config
  readonly logger: Logger
  readonly clock: Clock
  /** devices, sensors, readings, alerts, device keys... (SQL Server, PostgreSQL or SQLite). */
  readonly iot: Database
  /** universal data and the operations tables (PostgreSQL or SQLite). */
  readonly universal: Database
  /** The distinct databases (iot and universal may be one). */
  readonly databases: readonly Database[]
  close(): Promise<void>
}

export interface ContextOptions {
  /** serve, db migrate, apply and keys create may create a new embedded database file. */
  createEmbedded: boolean
  /** Refuse to run when a database has pending migrations (every command but `db`). */
  requireMigrated: boolean
  clock?: Clock
}

export function embeddedPath(config: Config): string {
  return join(config.dataDir, 'ingest.db')
}

function poolOptions(config: Config, url: string) {
  return {
    url,
    max: config.storage.poolMax,
    connectTimeoutMs: config.storage.connectTimeoutMs,
    queryTimeoutMs: config.storage.queryTimeoutMs,
    statementTimeoutMs: config.storage.statementTimeoutMs,
  }
}

/**
 * The composition root: the only place that picks adapters. Engines are imported lazily so an
 * unused driver is never loaded.
 */
export async function createContext(config: Config, logger: Logger, options: ContextOptions): Promise<AppContext> {
  const opened = new Map<string, Database>()
  const open = async (engine: Engine): Promise<Database> => {
    const key = engine
    const existing = opened.get(key)
    if (existing) return existing
    let db: Database
    if (engine === 'sqlite') {
      const { openSqliteDatabase } = await import('../adapters/storage/sqlite/index.js')
      db = openSqliteDatabase({ path: embeddedPath(config), create: options.createEmbedded })
      logger.debug({ path: db.target }, 'embedded database')
    } else if (engine === 'postgres') {
      const { openPostgresDatabase } = await import('../adapters/storage/postgres/index.js')
      db = openPostgresDatabase(poolOptions(config, config.storage.postgresUrl ?? ''))
    } else {
      const { openSqlServerDatabase } = await import('../adapters/storage/sqlserver/index.js')
      const mssql = config.storage.mssql
      if (!mssql) throw new Error('unreachable: sqlserver without configuration')
      db = openSqlServerDatabase(mssql, { max: config.storage.poolMax, connectTimeoutMs: config.storage.connectTimeoutMs, requestTimeoutMs: config.storage.statementTimeoutMs })
    }
    opened.set(key, db)
    return db
  }

  const closeAll = async (): Promise<void> => {
    for (const db of [...opened.values()].reverse()) {
      try {
        await db.close()
      } catch (err) {
        logger.warn({ err }, 'closing a database failed')
      }
    }
    opened.clear()
  }

  try {
    const universal = await open(config.storage.universal)
    const iot = await open(config.storage.iot)
    const databases = [...opened.values()]
    for (const db of databases) {
      // The embedded database is ours alone: the commands that may create it also bring it up to date.
      if (db.engine === 'sqlite' && options.createEmbedded) await db.migrator.migrate({ dryRun: false, alterLegacy: false })
      else if (options.requireMigrated) await db.assertMigrated()
    }
    return { config, logger, clock: options.clock ?? systemClock, iot, universal, databases, close: closeAll }
  } catch (err) {
    await closeAll()
    throw err
  }
}
