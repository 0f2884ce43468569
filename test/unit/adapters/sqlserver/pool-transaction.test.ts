import sql from 'mssql'
import type { ConnectionPool } from 'mssql'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { MssqlPool } from '../../../../src/lib/adapters/storage/sqlserver/connection.js'
import type { SqlServerConfig } from '../../../../src/lib/config/types.js'
import { BugError, UnavailableError, TransientStoreError } from '../../../../src/lib/errors/index.js'

// MssqlPool reaches mssql through the module's default export at call time, so replacing Request and
// Transaction on that object lets these tests watch what the pool does without a server.

interface Call {
  parent: unknown
  sql: string
  batch: boolean
  params: Record<string, { type: unknown; value: unknown }>
}

type Answer = { rows?: Array<Record<string, unknown>>; bigint?: string[]; rowsAffected?: number[] } | Error

const calls: Call[] = []
const events: string[] = []
let answer: (text: string) => Answer = () => ({})
let active = 0
let maxActive = 0

class FakeRequest {
  parameters: Record<string, { type: unknown; value: unknown }> = {}
  constructor(readonly parent?: unknown) {}
  input(name: string, type: unknown, value: unknown): this {
    this.parameters[name] = { type, value }
    return this
  }
  query(text: string): Promise<unknown> {
    return this.exec(text, false)
  }
  batch(text: string): Promise<unknown> {
    return this.exec(text, true)
  }
  private async exec(text: string, batch: boolean): Promise<unknown> {
    const tx = this.parent instanceof FakeTransaction ? this.parent : undefined
    if (tx) tx.activeRequests++
    active++
    maxActive = Math.max(maxActive, active)
    try {
      await new Promise((r) => setTimeout(r, 2))
      calls.push({ parent: this.parent, sql: text, batch, params: this.parameters })
      events.push(`request:${text}`)
      const a = answer(text)
      if (a instanceof Error) throw a
      const rows = (a.rows ?? []) as Array<Record<string, unknown>> & { columns?: Record<string, unknown> }
      rows.columns = Object.fromEntries(Object.keys(rows[0] ?? {}).map((name, index) => [name, { index, name, type: a.bigint?.includes(name) ? sql.BigInt : sql.NVarChar }]))
      return { recordset: a.rows ? rows : undefined, recordsets: [], rowsAffected: a.rowsAffected ?? [], output: {} }
    } finally {
      active--
      if (tx) tx.activeRequests--
    }
  }
}

class FakeTransaction {
  activeRequests = 0
  constructor(readonly pool: unknown) {}
  on(): this {
    return this
  }
  begin(): Promise<this> {
    events.push('begin')
    return Promise.resolve(this)
  }
  commit(): Promise<void> {
    if (this.activeRequests > 0) return Promise.reject(new Error('EREQINPROG'))
    events.push('commit')
    return Promise.resolve()
  }
  rollback(): Promise<void> {
    // Like mssql: a rollback while a request is in progress fails.
    if (this.activeRequests > 0) return Promise.reject(new Error('EREQINPROG'))
    events.push('rollback')
    return Promise.resolve()
  }
}

const config: SqlServerConfig = { url: 'mssql://sa:secret@sql1:1433/iot', host: 'localhost', port: 1434, user: 'sa', password: 'secret', database: 'x', encrypt: false, trustServerCertificate: true, useProcedure: false }
const original = { Request: sql.Request, Transaction: sql.Transaction }
let pool: MssqlPool

beforeEach(() => {
  calls.length = 0
  events.length = 0
  answer = () => ({})
  active = 0
  maxActive = 0
  Object.assign(sql, { Request: FakeRequest, Transaction: FakeTransaction })
  pool = new MssqlPool(config, { max: 2, connectTimeoutMs: 1000, requestTimeoutMs: 1000 })
  // ConnectionPool.connect is overloaded (promise and callback forms); spy on the promise form MssqlPool calls.
  const driverPool: { connect(): Promise<ConnectionPool> } = pool.pool
  vi.spyOn(driverPool, 'connect').mockResolvedValue(pool.pool)
})

afterEach(() => {
  Object.assign(sql, original)
  vi.restoreAllMocks()
})

describe('MssqlPool statements (fake driver)', () => {
  it('all(): typed parameters, decoded bigint ids', async () => {
    answer = () => ({ rows: [{ id: '12', name: 'a' }], bigint: ['id'] })
    const rows = await pool.all('SELECT "id", "name" FROM "sensors" WHERE "device_id" = ? AND "name" = ?', [3_000_000_000, 'a'])
    expect(rows).toEqual([{ id: 12, name: 'a' }])
    expect(calls[0]).toMatchObject({ parent: pool.pool, batch: false, sql: 'SELECT "id", "name" FROM "sensors" WHERE "device_id" = @p1 AND "name" = @p2' })
    expect(calls[0]?.params['p1']).toEqual({ type: sql.BigInt, value: 3_000_000_000 })
  })

  it('run(): the affected rows of every statement in the batch', async () => {
    answer = () => ({ rowsAffected: [2, 3] })
    expect(await pool.run('UPDATE a SET x = 1; UPDATE b SET x = 1')).toBe(5)
    expect(calls[0]?.batch).toBe(true)
  })

  it('insert(): OUTPUT INSERTED.id, the id as a number; an unsafe id is refused', async () => {
    answer = () => ({ rows: [{ id: '42' }], bigint: ['id'] })
    expect(await pool.insert('devices', { device_uuid: 'u', name: null })).toBe(42)
    expect(calls[0]?.sql).toContain('OUTPUT INSERTED.id INTO @inserted VALUES (@p1, @p2)')
    answer = () => ({ rows: [{ id: '9007199254740993' }], bigint: ['id'] })
    await expect(pool.insert('devices', { device_uuid: 'u' })).rejects.toBeInstanceOf(BugError)
  })

  it('wraps an outage during a statement as UnavailableError', async () => {
    answer = () => Object.assign(new Error('Connection lost'), { code: 'ECONNCLOSED' })
    await expect(pool.all('SELECT 1')).rejects.toMatchObject({ code: 'SQLSERVER_UNAVAILABLE' })
  })
})

describe('MssqlPool.transaction (fake driver)', () => {
  it('runs the statements on the transaction, one at a time, then commits', async () => {
    const out = await pool.transaction(async (tx) => {
      await Promise.all([tx.run('UPDATE a SET x = ?', [1]), tx.run('UPDATE b SET x = ?', [2]), tx.all('SELECT 3')])
      return 'done'
    })
    expect(out).toBe('done')
    expect(maxActive).toBe(1)
    expect(calls.every((c) => c.parent instanceof FakeTransaction)).toBe(true)
    expect(events[0]).toBe('begin')
    expect(events.at(-1)).toBe('commit')
    expect(events.filter((e) => e.startsWith('request:'))).toHaveLength(3)
  })

  it('nested calls join the outer transaction', async () => {
    await pool.transaction(async (tx) => {
      await tx.transaction(async (inner) => {
        await inner.run('UPDATE a SET x = 1')
      })
    })
    expect(events.filter((e) => e === 'begin')).toHaveLength(1)
    expect(calls[0]?.parent).toBeInstanceOf(FakeTransaction)
  })

  it('rolls back after the statements still in flight finish, and rethrows the error', async () => {
    const boom = new Error('boom')
    await expect(
      pool.transaction((tx) => {
        void tx.run('UPDATE slow SET x = 1').catch(() => undefined)
        return Promise.reject(boom)
      }),
    ).rejects.toBe(boom)
    expect(events).toEqual(['begin', 'request:UPDATE slow SET x = 1', 'rollback'])
  })

  it('a deadlock inside becomes TransientStoreError (retried, not an outage) after the rollback', async () => {
    answer = () => Object.assign(new Error('Transaction was deadlocked'), { code: 'EREQUEST', number: 1205 })
    const err = await pool.transaction((tx) => tx.run('UPDATE a SET x = 1')).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TransientStoreError)
    expect(err).not.toBeInstanceOf(UnavailableError)
    expect(events.at(-1)).toBe('rollback')
  })
})
