import type { AppliedMigration, MigrateOptions, MigrateResult, MigrationStatus, Migrator } from '../../../ports/migrator.js'
import type { Engine } from '../../../ports/engine.js'
import type { SqlExecutor } from './executor.js'
import type { MigrationFile } from './migration-files.js'
import { toIsoOrNull, toNumber } from './row.js'

export interface MigratorSpec {
  engine: Engine
  target: string
  exec: SqlExecutor
  files: readonly MigrationFile[]
  /** Creates schema_migrations if missing (run under the lock). */
  bootstrapSql: string
  /** Takes the migration lock inside the transaction (advisory lock, sp_getapplock; SQLite: BEGIN IMMEDIATE already holds it). */
  lock(tx: SqlExecutor): Promise<void>
  /** Runs one migration file's SQL inside the transaction. */
  runScript(tx: SqlExecutor, sql: string): Promise<void>
  /** Extra checks reported by status (SQL Server legacy tables). */
  inspect?(exec: SqlExecutor): Promise<Pick<MigrationStatus, 'missingLegacyTables'>>
  /** SQL Server: rewrite or refuse steps that would alter legacy tables unless alterLegacy. */
  prepare?(file: MigrationFile, options: MigrateOptions): MigrationFile
}

async function readApplied(exec: SqlExecutor): Promise<AppliedMigration[] | undefined> {
  try {
    const rows = await exec.all('SELECT "version", "name", "applied_at" FROM schema_migrations ORDER BY "version"')
    return rows.map((r) => ({ version: toNumber(r['version']), name: String(r['name']), appliedAt: toIsoOrNull(r['applied_at']) ?? '' }))
  } catch {
    return undefined // no schema_migrations table yet
  }
}

/** Forward-only migrator shared by every engine: numbered files, one transaction, under a lock. */
export function createSqlMigrator(spec: MigratorSpec): Migrator {
  const status = async (): Promise<MigrationStatus> => {
    const applied = (await readApplied(spec.exec)) ?? []
    const done = new Set(applied.map((a) => a.version))
    const extra = spec.inspect ? await spec.inspect(spec.exec) : {}
    return {
      engine: spec.engine,
      target: spec.target,
      applied,
      pending: spec.files.filter((f) => !done.has(f.version)).map(({ version, name }) => ({ version, name })),
      ...extra,
    }
  }

  return {
    status,
    async migrate(options: MigrateOptions): Promise<MigrateResult> {
      if (options.dryRun) {
        const current = await status()
        const pending = new Set(current.pending.map((p) => p.version))
        const ran = spec.files
          .filter((f) => pending.has(f.version))
          .map((f) => spec.prepare?.(f, options) ?? f)
          .map(({ version, name, sql }) => ({ version, name, sql }))
        return { ...current, ran, dryRun: true }
      }
      const ran = await spec.exec.transaction(async (tx) => {
        await spec.lock(tx)
        await spec.runScript(tx, spec.bootstrapSql)
        // Read again under the lock: a concurrent migrate may have applied some meanwhile.
        const done = new Set(((await readApplied(tx)) ?? []).map((a) => a.version))
        const out: Array<{ version: number; name: string }> = []
        for (const file of spec.files) {
          if (done.has(file.version)) continue
          const prepared = spec.prepare?.(file, options) ?? file
          await spec.runScript(tx, prepared.sql)
          await tx.run('INSERT INTO schema_migrations ("version", "name") VALUES (?, ?)', [file.version, file.name])
          out.push({ version: file.version, name: file.name })
        }
        return out
      })
      return { ...(await status()), ran, dryRun: false }
    },
  }
}
