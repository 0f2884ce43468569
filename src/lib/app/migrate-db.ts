import type { MigrateResult, MigrationStatus } from '../ports/migrator.js'
import type { AppContext } from './context.js'

export interface StoreMigration extends MigrateResult {
  /** Which stores live in this database. */
  stores: Array<'iot' | 'universal'>
}

function storesOf(ctx: AppContext, db: AppContext['iot']): Array<'iot' | 'universal'> {
  return [...(db === ctx.iot ? (['iot'] as const) : []), ...(db === ctx.universal ? (['universal'] as const) : [])]
}

/** `ingest db migrate`: applies pending migrations to every configured database, each under its lock. */
export async function migrateDb(ctx: AppContext, options: { dryRun: boolean; alterLegacy: boolean }): Promise<{ databases: StoreMigration[] }> {
  const databases: StoreMigration[] = []
  for (const db of ctx.databases) {
    const result = await db.migrator.migrate(options)
    ctx.logger.info({ engine: db.engine, target: db.target, ran: result.ran.map((r) => r.version), dryRun: options.dryRun }, 'migrate')
    databases.push({ stores: storesOf(ctx, db), ...result })
  }
  return { databases }
}

/** `ingest db status`: applied and pending migrations per database. */
export async function dbStatus(ctx: AppContext): Promise<{ databases: Array<MigrationStatus & { stores: Array<'iot' | 'universal'> }> }> {
  const databases = []
  for (const db of ctx.databases) databases.push({ stores: storesOf(ctx, db), ...(await db.migrator.status()) })
  return { databases }
}
