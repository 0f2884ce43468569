import type { Database } from '../../../ports/storage.js'
import type { SqlExecutor } from './executor.js'
import { createSqlIdempotencyStore } from './idempotency-store.js'
import { createSqlJobRunStore } from './job-run-store.js'
import { createSqlKeyStore } from './key-store.js'
import { createSqlRegistryStore } from './registry-store.js'
import { createSqlStatusStore } from './status-store.js'

/** The low-volume stores every engine serves through the same SQL over its executor. */
export function sharedSqlStores(exec: SqlExecutor): Pick<Database, 'registry' | 'status' | 'idempotency' | 'keys' | 'jobRuns'> {
  return {
    registry: createSqlRegistryStore(exec),
    status: createSqlStatusStore(exec),
    idempotency: createSqlIdempotencyStore(exec),
    keys: createSqlKeyStore(exec),
    jobRuns: createSqlJobRunStore(exec),
  }
}
