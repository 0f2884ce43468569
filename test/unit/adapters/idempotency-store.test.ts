import { describe, expect, it } from 'vitest'

import type { Param, Row, SqlExecutor } from '../../../src/lib/adapters/storage/sql/executor.js'
import { createSqlIdempotencyStore } from '../../../src/lib/adapters/storage/sql/idempotency-store.js'
import { pgErrorClass } from '../../../src/lib/adapters/storage/postgres/pool.js'
import { sqliteDialect, sqliteErrorClass } from '../../../src/lib/adapters/storage/sqlite/connection.js'
import { mssqlErrorClass } from '../../../src/lib/adapters/storage/sqlserver/connection.js'
import { PermanentStoreError } from '../../../src/lib/errors/index.js'

function fakeExec(insertError: Error | undefined): SqlExecutor & { inserts: Param[][] } {
  const inserts: Param[][] = []
  const exec: SqlExecutor & { inserts: Param[][] } = {
    engine: 'sqlite',
    dialect: sqliteDialect,
    inserts,
    all: <R extends Row>() => Promise.resolve([] as R[]),
    run: (sql: string, params: readonly Param[] = []) => {
      if (sql.startsWith('INSERT')) {
        inserts.push([...params])
        if (insertError) return Promise.reject(insertError)
      }
      return Promise.resolve(1)
    },
    insert: () => Promise.resolve(1),
    transaction: (fn) => fn(exec),
  }
  return exec
}

describe('idempotency store claims', () => {
  it('losing the race on the key means in flight (each engine files its unique violation as `unique`)', async () => {
    expect([pgErrorClass('23505'), sqliteErrorClass('SQLITE_CONSTRAINT_PRIMARYKEY'), sqliteErrorClass('SQLITE_CONSTRAINT_UNIQUE'), mssqlErrorClass(2627), mssqlErrorClass(2601)]).toEqual(['unique', 'unique', 'unique', 'unique', 'unique'])
    const err = new PermanentStoreError('unique', '23505', 'duplicate key value violates unique constraint')
    await expect(createSqlIdempotencyStore(fakeExec(err)).begin('s', 'k', 'h', 0, 86_400_000)).resolves.toEqual({ state: 'in_flight' })
    // Another permanent refusal is not a lost race.
    const check = new PermanentStoreError('constraint', '23514', 'check')
    await expect(createSqlIdempotencyStore(fakeExec(check)).begin('s', 'k', 'h', 0, 86_400_000)).rejects.toBe(check)
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
