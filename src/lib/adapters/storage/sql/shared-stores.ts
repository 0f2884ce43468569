import type { Database } from '../../../ports/storage.js'
import { createSqlCsvImportStore } from './csv-import-store.js'
import { createSqlDeviceKeyStore } from './device-key-store.js'
import type { SqlExecutor } from './executor.js'
import { createSqlIdempotencyStore } from './idempotency-store.js'
import { createSqlJobRunStore } from './job-run-store.js'
import { createSqlPredictionStore } from './prediction-store.js'
import { createSqlRegistryStore } from './registry-store.js'
import { createSqlRoleKeyStore } from './role-key-store.js'
import { createSqlSecurityAuditStore } from './security-audit-store.js'
import { createSqlStatusStore } from './status-store.js'
import { createSqlStreamConfigStore } from './stream-config-store.js'

/** The low-volume stores every engine serves through the same SQL over its executor. */
export function sharedSqlStores(exec: SqlExecutor): Pick<Database, 'registry' | 'status' | 'idempotency' | 'deviceKeys' | 'roleKeys' | 'securityAudit' | 'jobRuns' | 'streamConfigs' | 'csvImports' | 'predictions'> {
  return {
    registry: createSqlRegistryStore(exec),
    status: createSqlStatusStore(exec),
    idempotency: createSqlIdempotencyStore(exec),
    deviceKeys: createSqlDeviceKeyStore(exec),
    roleKeys: createSqlRoleKeyStore(exec),
    securityAudit: createSqlSecurityAuditStore(exec),
    jobRuns: createSqlJobRunStore(exec),
    streamConfigs: createSqlStreamConfigStore(exec),
    predictions: createSqlPredictionStore(exec),
    csvImports: createSqlCsvImportStore(exec),
  }
}
