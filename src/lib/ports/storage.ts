import type { Migrator } from './migrator.js'
import type { RegistryStore } from './registry-store.js'

export type Engine = 'sqlite' | 'postgres' | 'sqlserver'

/** What an engine can do, for the few places the app must know (no scattered `engine ===` checks). */
export interface Capabilities {
  /** Bulk load path (COPY on PostgreSQL). */
  bulkCopy: boolean
  /** Several processes may write at once through this connection kind. */
  multiProcess: boolean
}

/**
 * One open database (an engine and its connection or pool). The IoT store and the universal store
 * are Databases; when both use the same engine and URL they are the same object.
 */
export interface Database {
  readonly engine: Engine
  /** Where it is, without credentials. */
  readonly target: string
  readonly capabilities: Capabilities
  readonly migrator: Migrator
  readonly registry: RegistryStore
  /** Cheap liveness probe (`SELECT 1`). */
  ping(): Promise<void>
  /** Fails with SchemaBehindError when migrations are pending. */
  assertMigrated(): Promise<void>
  close(): Promise<void>
}
