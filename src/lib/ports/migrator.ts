import type { Engine } from './engine.js'

export interface MigrationInfo {
  version: number
  name: string
}

export interface AppliedMigration extends MigrationInfo {
  appliedAt: string
}

/** Applied and pending migrations of one database. */
export interface MigrationStatus {
  engine: Engine
  /** Where it is, without credentials (file path, host:port/db). */
  target: string
  applied: AppliedMigration[]
  pending: MigrationInfo[]
  /** SQL Server: legacy tables the IoT store needs that are missing (they belong to another team). */
  missingLegacyTables?: string[]
}

export interface MigrateOptions {
  dryRun: boolean
  /** SQL Server only: also create indexes/constraints on the legacy dbo tables. */
  alterLegacy: boolean
}

export interface MigrateResult extends MigrationStatus {
  /** The migrations this run applied (or would apply, with dryRun), with their SQL on a dry run. */
  ran: Array<MigrationInfo & { sql?: string }>
  dryRun: boolean
}

/** Forward-only numbered migrations of one database, applied under a lock. */
export interface Migrator {
  status(): Promise<MigrationStatus>
  migrate(options: MigrateOptions): Promise<MigrateResult>
}
