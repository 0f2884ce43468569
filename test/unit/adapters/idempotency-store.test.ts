import { describe, expect, it } from 'vitest'

import type { Param, Row, SqlExecutor } from '../../../src/lib/adapters/storage/sql/executor.js'
import { createSqlIdempotencyStore } from '../../../src/lib/adapters/storage/sql/idempotency-store.js'
import { sqliteDialect } from '../../../src/lib/adapters/storage/sqlite/connection.js'

function fakeExec(insertError: unknown): SqlExecutor & { inserts: Param[][] } {
  const inserts: Param[][] = []
  const exec: SqlExecutor & { inserts: Param[][] } = {
    engine: 'sqlite',
    dialect: sqliteDialect,
    inserts,
    all: async <R extends Row>() => [] as R[],
    run: async (sql: string, params: readonly Param[] = []) => {
      if (sql.startsWith('INSERT')) {
        inserts.push([...params])
        if (insertError) throw insertError
      }
      return 1
    },
    insert: async () => 1,
    transaction: (fn) => fn(exec),
  }
  return exec
}

describe('idempotency store claims', () => {
  it('losing the race on the key means in flight', async () => {
    for (const err of [Object.assign(new Error('dup'), { code: '23505' }), Object.assign(new Error('dup'), { code: 'SQLITE_CONSTRAINT_PRIMARYKEY' }), Object.assign(new Error('dup'), { number: 2627 })]) {
      await expect(createSqlIdempotencyStore(fakeExec(err)).begin('s', 'k', 'h', 0, 86_400_000)).resolves.toEqual({ state: 'in_flight' })
    }
  })

  it('any other failure is rethrown (a 503 for the client, never a 409 for a request that was not stored)', async () => {
    const outage = Object.assign(new Error('connection terminated'), { code: '08006' })
    await expect(createSqlIdempotencyStore(fakeExec(outage)).begin('s', 'k', 'h', 0, 86_400_000)).rejects.toBe(outage)
  })

  it('an in-flight claim is a short lease, not the whole TTL', async () => {
    const exec = fakeExec(undefined)
    await createSqlIdempotencyStore(exec).begin('s', 'k', 'h', 1_000, 86_400_000)
    const expires = exec.inserts[0]?.[5] as Date
    expect(expires.getTime() - 1_000).toBeLessThanOrEqual(120_000)
  })
})
