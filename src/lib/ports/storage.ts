import type { CsvImportStore } from './csv-import-store.js'
import type { DeviceKeyStore } from './device-key-store.js'
import type { IdempotencyStore } from './idempotency-store.js'
import type { IngestStore } from './ingest-store.js'
import type { JobRunStore } from './job-run-store.js'
import type { Migrator } from './migrator.js'
import type { PredictionStore } from './prediction-store.js'
import type { RegistryStore } from './registry-store.js'
import type { RoleKeyStore } from './role-key-store.js'
import type { SecurityAuditStore } from './security-audit-store.js'
import type { StatusStore } from './status-store.js'
import type { StreamConfigStore } from './stream-config-store.js'
import type { UniversalStore } from './universal-store.js'
import type { Engine } from './engine.js'

export type { Engine }

/**
 * One open database (an engine and its connection or pool). The IoT store and the universal store
 * are Databases; when both use the same engine and URL they are the same object.
 */
export interface Database {
  readonly engine: Engine
  /** Where it is, without credentials. */
  readonly target: string
  readonly migrator: Migrator
  readonly registry: RegistryStore
  /** The IoT write path (group-commit flushes) and sensor lookups. */
  readonly ingest: IngestStore
  readonly status: StatusStore
  /** The universal write path (data points, stream alerts, audit); used on the universal store. */
  readonly points: UniversalStore
  /** Operations tables (used on the universal store). */
  readonly idempotency: IdempotencyStore
  /** Device keys and the devices' last connection (used on the IoT store). */
  readonly deviceKeys: DeviceKeyStore
  /** Role keys (used on the universal store). */
  readonly roleKeys: RoleKeyStore
  /** `security_audit_log`, append-only (used on the universal store). */
  readonly securityAudit: SecurityAuditStore
  /** `job_runs` (universal store). */
  readonly jobRuns: JobRunStore
  /** `stream_configs` + `value_constraints` (universal store). */
  readonly streamConfigs: StreamConfigStore
  /** `predictions`, `ml_models`, `ml_watermarks`, `ml_events`: the ML jobs (used on the IoT store). */
  readonly predictions: PredictionStore
  /** `csv_import_jobs`: CSV import checkpoints and upload jobs (universal store). */
  readonly csvImports: CsvImportStore
  /** Cheap liveness probe (`SELECT 1`). */
  ping(): Promise<void>
  /** Fails with SchemaBehindError when migrations are pending. */
  assertMigrated(): Promise<void>
  close(): Promise<void>
}
