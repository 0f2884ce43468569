import type { IdempotencyBegin, IdempotencyStore } from '../../../ports/idempotency-store.js'
import type { SqlExecutor } from './executor.js'
import { toJson, toMsOrNull, toNumber } from './row.js'

const SELECT = 'SELECT "request_hash", "status", "http_status", "response", "expires_at" FROM "idempotency_keys" WHERE "scope" = ? AND "key" = ?'

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
        await exec.run('INSERT INTO "idempotency_keys" ("scope", "key", "request_hash", "status", "created_at", "expires_at") VALUES (?, ?, ?, ?, ?, ?)', [scope, key, requestHash, 'in_flight', new Date(nowMs), new Date(nowMs + ttlMs)])
        return { state: 'new' }
      } catch {
        return { state: 'in_flight' }
      }
    },
    async complete(scope, key, httpStatus, response) {
      await exec.run('UPDATE "idempotency_keys" SET "status" = ?, "http_status" = ?, "response" = ? WHERE "scope" = ? AND "key" = ?', ['done', httpStatus, JSON.stringify(response), scope, key])
    },
    async abandon(scope, key) {
      await exec.run(`DELETE FROM "idempotency_keys" WHERE "scope" = ? AND "key" = ? AND "status" = 'in_flight'`, [scope, key])
    },
    prune: (nowMs) => exec.run('DELETE FROM "idempotency_keys" WHERE "expires_at" < ?', [new Date(nowMs)]),
  }
}
