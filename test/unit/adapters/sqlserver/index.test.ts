import { afterEach, describe, expect, it, vi } from 'vitest'

import type { Param, Row, SqlExecutor } from '../../../../src/lib/adapters/storage/sql/executor.js'
import { mssqlDialect } from '../../../../src/lib/adapters/storage/sqlserver/connection.js'
import { openSqlServerDatabase, PROCEDURE_EXISTS_SQL, type SqlServerDatabase } from '../../../../src/lib/adapters/storage/sqlserver/index.js'
import { PROCEDURE_NAME } from '../../../../src/lib/adapters/storage/sqlserver/ingest-store.js'
import type { SqlServerConfig } from '../../../../src/lib/config/types.js'
import type { MigrationStatus } from '../../../../src/lib/ports/migrator.js'

// No server: the pool is created (mssql connects lazily) and its methods are replaced by spies.

const config = (useProcedure: boolean): SqlServerConfig => ({
  url: undefined,
  host: 'sql1',
  port: 1433,
  user: 'ingest',
  password: 'secret',
  database: 'iot',
  encrypt: false,
  trustServerCertificate: true,
  useProcedure,
})

const opened: SqlServerDatabase[] = []
function open(useProcedure = false): SqlServerDatabase {
  const db = openSqlServerDatabase(config(useProcedure), { max: 2, connectTimeoutMs: 1000, requestTimeoutMs: 1000 })
  opened.push(db)
  return db
}

afterEach(async () => {
  vi.restoreAllMocks()
  for (const db of opened.splice(0)) await db.close()
})

function status(pending: Array<{ version: number; name: string }>): MigrationStatus {
  return { engine: 'sqlserver', target: 'sql1:1433/iot', applied: [], pending } as unknown as MigrationStatus
}

describe('openSqlServerDatabase: assertMigrated', () => {
  it('accepts the optional (--alter-legacy) migrations pending, by version, not by name', async () => {
    const db = open()
    expect(db.migrator).toHaveProperty('optionalVersions', new Set([2]))
    const spy = vi.spyOn(db.migrator, 'status').mockResolvedValue(status([{ version: 2, name: 'legacy_indexes' }]))
    await expect(db.assertMigrated()).resolves.toBeUndefined()
    spy.mockResolvedValue(status([{ version: 3, name: 'reading_keys' }]))
    await expect(db.assertMigrated()).rejects.toMatchObject({ code: 'SCHEMA_BEHIND', details: { pending: ['3_reading_keys'] } })
    // a required migration whose name mentions "legacy" is still required
    spy.mockResolvedValue(status([{ version: 4, name: 'legacy_columns' }]))
    await expect(db.assertMigrated()).rejects.toMatchObject({ code: 'SCHEMA_BEHIND', details: { pending: ['4_legacy_columns'] } })
  })

  it('in procedure mode, refuses a database without the procedure', async () => {
    const db = open(true)
    vi.spyOn(db.migrator, 'status').mockResolvedValue(status([]))
    const all = vi.spyOn(db.pool, 'all').mockResolvedValue([])
    await expect(db.assertMigrated()).rejects.toMatchObject({ code: 'SQLSERVER_PROCEDURE_MISSING', message: expect.stringContaining(PROCEDURE_NAME) as unknown })
    expect(all).toHaveBeenCalledWith(PROCEDURE_EXISTS_SQL)
    all.mockResolvedValue([{ found: 1 }])
    await expect(db.assertMigrated()).resolves.toBeUndefined()
    expect(PROCEDURE_EXISTS_SQL).toBe("SELECT 1 AS found WHERE OBJECT_ID(N'dbo.sp_insert_reading_and_check_threshold', N'P') IS NOT NULL")
  })

  it('does not look for the procedure without IOT_MSSQL_PROCEDURE', async () => {
    const db = open(false)
    vi.spyOn(db.migrator, 'status').mockResolvedValue(status([]))
    const all = vi.spyOn(db.pool, 'all').mockResolvedValue([])
    await expect(db.assertMigrated()).resolves.toBeUndefined()
    expect(all).not.toHaveBeenCalled()
  })
})

describe('openSqlServerDatabase: the ingest store', () => {
  function recordingTx(): { tx: SqlExecutor; sql: string[] } {
    const sql: string[] = []
    const tx: SqlExecutor = {
      engine: 'sqlserver',
      dialect: mssqlDialect,
      all: <R extends Row>(text: string, params: readonly Param[] = []) => {
        sql.push(text)
        return Promise.resolve((text.includes('@out') ? params.map((id) => ({ sensor_id: id, state: '{}' })) : []) as unknown as R[])
      },
      run: (text) => {
        sql.push(text)
        return Promise.resolve(0)
      },
      insert: () => Promise.resolve(1),
      transaction: (fn) => fn(tx),
    }
    return { tx, sql }
  }

  it('is the SQL Server batch store over the pool, in the mode the configuration says', async () => {
    for (const useProcedure of [false, true]) {
      const db = open(useProcedure)
      expect(db.ingest.capabilities.classifiesItself).toBe(useProcedure)
      expect(db.ingest.valueGuard(1e10)).toBe('VALUE_OUT_OF_STORAGE_RANGE')
      const { tx, sql } = recordingTx()
      const transaction = vi.spyOn(db.pool, 'transaction').mockImplementation((fn) => fn(tx))
      await db.ingest.transaction(async (t) => {
        await t.lockSensors([2, 1])
        await t.existingDedupKeys([{ sensorId: 1, dedupKey: 'k' }])
      })
      expect(transaction).toHaveBeenCalledTimes(1)
      expect(sql[0]).toContain('WITH (UPDLOCK, HOLDLOCK, ROWLOCK)')
      expect(sql[1]).toContain(useProcedure ? 'dbo.ingest_reading_keys' : 'dbo.sensor_readings')
    }
  })
})
