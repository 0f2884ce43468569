import { isUniqueViolation } from '../../../errors/index.js'
import type { IdempotencyBegin, IdempotencyStore } from '../../../ports/idempotency-store.js'
import type { SqlExecutor } from './executor.js'
import { toJson, toMsOrNull, toNumber } from './row.js'

const SELECT = 'SELECT "request_hash", "status", "http_status", "response", "expires_at" FROM "idempotency_keys" WHERE "scope" = ? AND "key" = ?'

/** How long an in-flight claim holds its key before a retry may reclaim it. */
const leaseMs = 120_000

/** Idempotency records over any engine; a racing second claim loses on the primary key and is told "in flight". */
export function createSqlIdempotencyStore(exec: SqlExecutor): IdempotencyStore {
  return {
    async begin(scope, key, requestHash, nowMs, ttlMs): Promise<IdempotencyBegin> {
      const rows = await exec.all(SELECT, [scope, key])
      const row = rows[0]
      if (row && (toMsOrNull(row['expires_at']) ?? 0) > nowMs) {
        if (row['request_hash'] !== requestHash) return { state: 'mismatch' }
        if (row['status'] !== 'done') return { state: 'in_flight' }
        return { state: 'done', httpStatus: toNumber(row['http_status']), response: toJson(row['response']) }
      }
      if (row) await exec.run('DELETE FROM "idempotency_keys" WHERE "scope" = ? AND "key" = ?', [scope, key])
      try {
        // An in-flight claim is a short lease: a crashed request must not hold its key for the whole TTL.
        await exec.run('INSERT INTO "idempotency_keys" ("scope", "key", "request_hash", "status", "created_at", "expires_at") VALUES (?, ?, ?, ?, ?, ?)', [scope, key, requestHash, 'in_flight', new Date(nowMs), new Date(nowMs + Math.min(ttlMs, leaseMs))])
        return { state: 'new' }
      } catch (err) {
        // Only losing the race on the primary key means "in flight"; anything else is a store failure.
        if (isUniqueViolation(err)) return { state: 'in_flight' }
        throw err
      }
    },
    async complete(scope, key, httpStatus, response, expiresAtMs) {
      await exec.run('UPDATE "idempotency_keys" SET "status" = ?, "http_status" = ?, "response" = ?, "expires_at" = ? WHERE "scope" = ? AND "key" = ?', ['done', httpStatus, JSON.stringify(response), new Date(expiresAtMs), scope, key])
    },
    async abandon(scope, key) {
      await exec.run(`DELETE FROM "idempotency_keys" WHERE "scope" = ? AND "key" = ? AND "status" = 'in_flight'`, [scope, key])
    },
    prune: (nowMs) => exec.run('DELETE FROM "idempotency_keys" WHERE "expires_at" < ?', [new Date(nowMs)]),
  }
}
