import { describe, expect, it } from 'vitest'

import type { Param, Row, SqlExecutor } from '../../../../src/lib/adapters/storage/sql/executor.js'
import { loadMigrationFiles, type MigrationFile } from '../../../../src/lib/adapters/storage/sql/migration-files.js'
import { mssqlDialect, splitBatches } from '../../../../src/lib/adapters/storage/sqlserver/connection.js'
import {
  altersLegacy,
  createMssqlMigrator,
  LEGACY_TABLES,
  LEGACY_TABLES_CREATED_IF_MISSING,
  MISSING_LEGACY_TABLES_SQL,
  MSSQL_BOOTSTRAP_SQL,
  MSSQL_LOCK_SQL,
  REQUIRED_LEGACY_TABLES,
} from '../../../../src/lib/adapters/storage/sqlserver/migrator.js'

interface Logged {
  sql: string
  params: readonly Param[]
  inTx: boolean
}

/**
 * A SqlExecutor that records every statement and keeps schema_migrations in memory; writes made inside a
 * transaction are only kept when it commits.
 */
function fakeServer(options: { applied?: number[]; missing?: string[]; lockResult?: number } = {}) {
  const log: Logged[] = []
  const committed = { applied: new Set(options.applied ?? []), bootstrapped: (options.applied ?? []).length > 0 }
  let transactions = 0

  const make = (inTx: boolean, state: { applied: Set<number>; bootstrapped: boolean }): SqlExecutor => {
    const exec: SqlExecutor = {
      engine: 'sqlserver',
      dialect: mssqlDialect,
      all: <R extends Row>(text: string, params: readonly Param[] = []): Promise<R[]> => {
        log.push({ sql: text, params, inTx })
        if (text === MSSQL_LOCK_SQL) return Promise.resolve([{ result: options.lockResult ?? 0 } as unknown as R])
        if (text === MISSING_LEGACY_TABLES_SQL) return Promise.resolve((options.missing ?? []).map((name) => ({ name }) as unknown as R))
        if (text.includes('FROM schema_migrations')) {
          if (!state.bootstrapped) return Promise.reject(Object.assign(new Error("Invalid object name 'schema_migrations'"), { number: 208 }))
          return Promise.resolve([...state.applied].sort().map((version) => ({ version, name: `m${version}`, applied_at: new Date('2025-01-01T00:00:00Z') }) as unknown as R))
        }
        return Promise.resolve([])
      },
      run: (text, params = []) => {
        log.push({ sql: text, params, inTx })
        if (text === MSSQL_BOOTSTRAP_SQL) state.bootstrapped = true
        if (text.startsWith('INSERT INTO schema_migrations')) state.applied.add(params[0] as number)
        return Promise.resolve(1)
      },
      insert: () => Promise.reject(new Error('not used')),
      transaction: async (fn) => {
        if (inTx) return fn(exec)
        transactions++
        const tx = { applied: new Set(committed.applied), bootstrapped: committed.bootstrapped }
        const out = await fn(make(true, tx))
        Object.assign(committed, tx)
        return out
      },
    }
    return exec
  }
  const pool = Object.assign(make(false, committed), { target: 'sql1:1433/iot' })
  return { pool, log, txLog: () => log.filter((l) => l.inTx).map((l) => l.sql), transactions: () => transactions }
}

const files = loadMigrationFiles('sqlserver')
const initial = files.find((f) => f.version === 1) as MigrationFile
const legacy = files.find((f) => f.version === 2) as MigrationFile
const readingKeys = files.find((f) => f.version === 3) as MigrationFile

describe('the SQL Server migration files', () => {
  it('are 0001 (additive), 0002 (alters legacy, marked) and 0003 (additive)', () => {
    expect(files.map((f) => `${f.version}_${f.name}`)).toEqual(['1_initial', '2_legacy_indexes', '3_reading_keys'])
    expect(altersLegacy(initial)).toBe(false)
    expect(altersLegacy(legacy)).toBe(true)
    expect(altersLegacy(readingKeys)).toBe(false)
  })

  it('altersLegacy reads only the first non-empty line', () => {
    expect(altersLegacy({ sql: '\n  -- ALTERS-LEGACY  \nCREATE INDEX x' })).toBe(true)
    expect(altersLegacy({ sql: '-- schema\n-- alters-legacy\n' })).toBe(false)
    expect(altersLegacy({ sql: '' })).toBe(false)
  })
})

describe('createMssqlMigrator (fake executor)', () => {
  it('takes sp_getapplock first, then bootstraps, then runs 0001 and 0003 batch by batch; 0002 stays pending without alterLegacy', async () => {
    const s = fakeServer()
    const migrator = createMssqlMigrator(s.pool, files)
    const result = await migrator.migrate({ dryRun: false, alterLegacy: false })

    const tx = s.txLog()
    expect(tx[0]).toBe(MSSQL_LOCK_SQL)
    expect(tx[0]).toContain("@LockOwner = 'Transaction'")
    expect(tx[1]).toBe(MSSQL_BOOTSTRAP_SQL)
    const batches = splitBatches(initial.sql)
    expect(batches.length).toBeGreaterThan(10)
    const start = tx.indexOf(batches[0] as string)
    expect(tx.slice(start, start + batches.length)).toEqual(batches)
    expect(tx).toContain('INSERT INTO schema_migrations ("version", "name") VALUES (?, ?)')
    const keyBatches = splitBatches(readingKeys.sql)
    const start3 = tx.indexOf(keyBatches[0] as string)
    expect(start3).toBeGreaterThan(start + batches.length - 1)
    expect(tx.slice(start3, start3 + keyBatches.length)).toEqual(keyBatches)
    for (const b of splitBatches(legacy.sql)) expect(tx).not.toContain(b)
    expect(tx.join('\n')).not.toMatch(/CREATE UNIQUE/)

    expect(result.ran).toEqual([
      { version: 1, name: 'initial' },
      { version: 3, name: 'reading_keys' },
    ])
    expect(result.pending).toEqual([{ version: 2, name: 'legacy_indexes' }])
    expect((await migrator.status()).pending).toEqual([{ version: 2, name: 'legacy_indexes' }])
    expect(migrator.optionalVersions).toEqual(new Set([2]))
  })

  it('runs 0002 with alterLegacy, after 0001, and records it', async () => {
    const s = fakeServer()
    const result = await createMssqlMigrator(s.pool, files).migrate({ dryRun: false, alterLegacy: true })
    const tx = s.txLog()
    const i1 = tx.indexOf(splitBatches(initial.sql)[0] as string)
    const legacyBatches = splitBatches(legacy.sql)
    expect(legacyBatches).toHaveLength(4)
    const i2 = tx.indexOf(legacyBatches[0] as string)
    expect(i1).toBeGreaterThan(1)
    expect(i2).toBeGreaterThan(i1)
    expect(tx.slice(i2, i2 + 4)).toEqual(legacyBatches)
    expect(result.ran).toEqual([
      { version: 1, name: 'initial' },
      { version: 2, name: 'legacy_indexes' },
      { version: 3, name: 'reading_keys' },
    ])
    expect(result.pending).toEqual([])
  })

  it('a later --alter-legacy run applies only the pending 0002', async () => {
    const s = fakeServer({ applied: [1, 3] })
    const result = await createMssqlMigrator(s.pool, files).migrate({ dryRun: false, alterLegacy: true })
    expect(result.ran).toEqual([{ version: 2, name: 'legacy_indexes' }])
    expect(result.pending).toEqual([])
    expect(s.txLog()).not.toContain(splitBatches(initial.sql)[1])
    expect(s.txLog()).not.toContain(splitBatches(readingKeys.sql)[0])
  })

  it('a database migrated before 0003 gets only 0003, and 0002 stays pending', async () => {
    const s = fakeServer({ applied: [1] })
    const result = await createMssqlMigrator(s.pool, files).migrate({ dryRun: false, alterLegacy: false })
    expect(result.ran).toEqual([{ version: 3, name: 'reading_keys' }])
    expect(result.pending).toEqual([{ version: 2, name: 'legacy_indexes' }])
  })

  it('a dry run runs nothing and lists what would run, with its SQL', async () => {
    const s = fakeServer()
    const migrator = createMssqlMigrator(s.pool, files)
    const plain = await migrator.migrate({ dryRun: true, alterLegacy: false })
    expect(plain.dryRun).toBe(true)
    expect(plain.ran.map((r) => r.version)).toEqual([1, 3])
    expect(plain.ran[0]?.sql).toBe(initial.sql)
    expect(plain.pending.map((p) => p.version)).toEqual([1, 2, 3])
    const withLegacy = await migrator.migrate({ dryRun: true, alterLegacy: true })
    expect(withLegacy.ran.map((r) => r.version)).toEqual([1, 2, 3])
    expect(s.transactions()).toBe(0)
    expect(s.log.filter((l) => l.inTx)).toEqual([])
    expect(s.log.every((l) => /^\s*SELECT/i.test(l.sql))).toBe(true)
  })

  it('refuses when sp_getapplock does not grant the lock, before running anything else', async () => {
    const s = fakeServer({ lockResult: -1 })
    await expect(createMssqlMigrator(s.pool, files).migrate({ dryRun: false, alterLegacy: false })).rejects.toMatchObject({ code: 'MIGRATION_LOCKED', message: expect.stringContaining('timed out') as unknown })
    expect(s.txLog()).toEqual([MSSQL_LOCK_SQL])
  })

  it('accepts a lock granted after waiting (1)', async () => {
    const s = fakeServer({ lockResult: 1 })
    await expect(createMssqlMigrator(s.pool, files).migrate({ dryRun: false, alterLegacy: false })).resolves.toMatchObject({ ran: [{ version: 1 }, { version: 3 }] })
  })

  it('refuses a database without the legacy tables before starting, and status names them', async () => {
    const s = fakeServer({ missing: ['sensor_readings', 'sensors'] })
    const migrator = createMssqlMigrator(s.pool, files)
    await expect(migrator.migrate({ dryRun: false, alterLegacy: false })).rejects.toMatchObject({
      code: 'SQLSERVER_LEGACY_TABLES_MISSING',
      exitCode: 2,
      message: expect.stringContaining('dbo.sensor_readings, dbo.sensors') as unknown,
    })
    expect(s.transactions()).toBe(0)
    expect((await migrator.status()).missingLegacyTables).toEqual(['sensor_readings', 'sensors'])
  })

  it('checks exactly the legacy tables it does not create', () => {
    expect(LEGACY_TABLES).toHaveLength(13)
    expect([...REQUIRED_LEGACY_TABLES, ...LEGACY_TABLES_CREATED_IF_MISSING].sort()).toEqual([...LEGACY_TABLES].sort())
    for (const t of REQUIRED_LEGACY_TABLES) expect(MISSING_LEGACY_TABLES_SQL).toContain(`(N'${t}')`)
    for (const t of LEGACY_TABLES_CREATED_IF_MISSING) expect(MISSING_LEGACY_TABLES_SQL).not.toContain(`(N'${t}')`)
    expect(MISSING_LEGACY_TABLES_SQL).toContain("OBJECT_ID(N'dbo.' + t.name, N'U') IS NULL")
    // 0001's own guard lists the same tables.
    for (const t of REQUIRED_LEGACY_TABLES) expect(initial.sql).toContain(`(N'${t}')`)
  })

  it('bootstraps dbo.schema_migrations only when missing', () => {
    expect(MSSQL_BOOTSTRAP_SQL).toMatch(/^IF OBJECT_ID\('dbo\.schema_migrations'\) IS NULL CREATE TABLE dbo\.schema_migrations \(version int PRIMARY KEY, name nvarchar\(200\) NOT NULL, applied_at datetime2 NOT NULL DEFAULT SYSUTCDATETIME\(\)\)$/)
  })
})
