import { describe, expect, it } from 'vitest'

import type { Param, Row, SqlExecutor } from '../../../src/lib/adapters/storage/sql/executor.js'
import { createSqlPredictionStore, decodeWindow, PREDICTION_SQL } from '../../../src/lib/adapters/storage/sql/prediction-store.js'
import { mssqlDialect, toMssqlPlaceholders } from '../../../src/lib/adapters/storage/sqlserver/connection.js'
import type { NewPrediction } from '../../../src/lib/ports/prediction-store.js'

/**
 * The SQL Server statements of the ML store, checked without a server (the contract suites run them on one
 * when MSSQL_URL is set): placeholders match parameters, sets travel as OPENJSON, outputs go INTO table
 * variables (legacy tables may carry triggers), savepoints are SAVE TRANSACTION, inserts stay under 2100 parameters.
 */

interface Call {
  sql: string
  params: readonly Param[]
}

function recorder(answer: (sql: string) => Row[] = () => []): { exec: SqlExecutor; calls: Call[] } {
  const calls: Call[] = []
  const exec: SqlExecutor = {
    engine: 'sqlserver',
    dialect: mssqlDialect,
    all: <R extends Row>(sql: string, params: readonly Param[] = []) => {
      calls.push({ sql, params })
      return Promise.resolve(answer(sql) as R[])
    },
    run: (sql, params = []) => {
      calls.push({ sql, params })
      return Promise.resolve(1)
    },
    insert: (table, values) => {
      calls.push({ sql: `INSERT ${table}`, params: Object.values(values) })
      return Promise.resolve(7)
    },
    transaction: (fn) => fn(exec),
  }
  return { exec, calls }
}

const placeholdersMatch = (c: Call): void => {
  expect(toMssqlPlaceholders(c.sql).count, c.sql.slice(0, 120)).toBe(c.params.length)
}

const prediction = (sensorId: number): NewPrediction => ({
  sensorId,
  deviceId: 1,
  modelId: 2,
  engine: 'baseline',
  predictedValue: 1.5,
  confidence: 0.5,
  predictedAt: 0,
  targetTimestamp: 600_000,
  horizonMinutes: 10,
  trend: 'up',
  windowPoints: 3,
  isAnomaly: true,
  anomalyScore: 0.9,
  riskLevel: 'high',
  severity: 'critical',
  status: 'active',
})

describe('prediction store SQL on SQL Server', () => {
  it('loads windows for many sensors in one statement (OPENJSON + CROSS APPLY TOP)', async () => {
    const { exec, calls } = recorder((sql) => (sql.includes('CROSS APPLY') ? [{ sensor_id: 5, max_id: 9, id: 9, value: 2, t: new Date(1000) }, { sensor_id: 5, max_id: 9, id: 8, value: 1, t: new Date(0) }] : []))
    const store = createSqlPredictionStore(exec)
    const windows = await store.pendingWindows([{ sensorId: 5, deviceId: 1, watermark: null }, { sensorId: 6, deviceId: 1, watermark: 3 }], 60)
    expect(calls).toHaveLength(1)
    const [call] = calls
    if (!call) throw new Error('no call')
    placeholdersMatch(call)
    expect(call.sql).toMatch(/OPENJSON\(\?\)/)
    expect(call.sql).toMatch(/SELECT TOP \(\?\)/)
    expect(JSON.parse(String(call.params[0]))).toEqual([[5, null], [6, 3]])
    expect(windows).toEqual([{ sensorId: 5, deviceId: 1, watermark: null, maxReadingId: 9, points: [{ value: 1, timeMs: 0 }, { value: 2, timeMs: 1000 }] }])
  })

  it('claims watermarks by compare-and-set in one batch, outputs INTO a table variable, locks the missing keys', async () => {
    const { exec, calls } = recorder((sql) => (sql.includes('@won') ? [{ sensor_id: 2 }] : []))
    const store = createSqlPredictionStore(exec)
    const won = await store.withTransaction((tx) => tx.claim([{ sensorId: 2, from: null, to: 10 }, { sensorId: 1, from: 4, to: 8 }], 0))
    expect([...won]).toEqual([2])
    const [call] = calls
    if (!call) throw new Error('no call')
    placeholdersMatch(call)
    expect(call.sql.match(/OUTPUT inserted\."sensor_id" INTO @won/g)).toHaveLength(2)
    expect(call.sql).toContain('WITH (UPDLOCK, HOLDLOCK)')
    // Sorted by sensor: concurrent runs lock in the same order.
    expect(JSON.parse(String(call.params[0]))).toEqual([[1, 4, 8], [2, null, 10]])
  })

  it('savepoints are SAVE TRANSACTION / ROLLBACK TRANSACTION, and a failure inside rolls back to it', async () => {
    const { exec, calls } = recorder()
    const store = createSqlPredictionStore(exec)
    await expect(store.withTransaction((tx) => tx.savepoint(() => Promise.reject(new Error('boom'))))).rejects.toThrow('boom')
    expect(calls.map((c) => c.sql.replace(/\d+/, 'N'))).toEqual(['SAVE TRANSACTION ml_sp_N', 'ROLLBACK TRANSACTION ml_sp_N'])
  })

  it('multi-row prediction inserts stay under 2100 parameters per statement', async () => {
    const { exec, calls } = recorder()
    const store = createSqlPredictionStore(exec)
    await store.withTransaction((tx) => tx.insertPredictions(Array.from({ length: 300 }, (_, i) => prediction(i + 1)), new Set()))
    expect(calls.length).toBeGreaterThan(1)
    for (const c of calls) {
      placeholdersMatch(c)
      expect(c.params.length).toBeLessThan(2100)
    }
    expect(calls.reduce((n, c) => n + c.params.length, 0)).toBe(300 * 15)
  })

  it('selects anomalies with OFFSET/FETCH after the ORDER BY; the explanation column holds 1000 characters', async () => {
    const { exec, calls } = recorder()
    const store = createSqlPredictionStore(exec)
    expect(store.explanationMaxChars).toBe(1000)
    await store.anomaliesToExplain({ threshold: 0.8, limit: 50 })
    await store.saveExplanation(3, '{}')
    for (const c of calls) placeholdersMatch(c)
    expect(calls[0]?.sql).toMatch(/ORDER BY p\."target_timestamp" DESC, p\."id" DESC OFFSET 0 ROWS FETCH NEXT 50 ROWS ONLY$/)
    expect(calls[1]?.sql).toMatch(/LTRIM\(RTRIM\("explanation"\)\) = ''/)
  })

  it('every engine has its statements', () => {
    for (const e of ['postgres', 'sqlite', 'sqlserver'] as const) expect(PREDICTION_SQL[e].windows).toContain('sensor_readings')
  })
})

describe('PostgreSQL window decoding', () => {
  const pack = (pairs: Array<[number, number]>): Buffer => {
    const b = Buffer.alloc(pairs.length * 16)
    pairs.forEach(([v, t], i) => {
      b.writeDoubleBE(v, i * 16)
      b.writeDoubleBE(t, i * 16 + 8)
    })
    return b
  }

  it('turns (value, epoch ms) float8 pairs, newest first, into points oldest first, bit for bit', () => {
    const packed = pack([
      [0.1 + 0.2, 1_767_614_400_123.456],
      [-3.5e-12, 1_767_614_400_000],
      [7, 1_767_614_400_000],
      [Number.MAX_VALUE, 1_767_614_340_000],
    ])
    // A slice of a bigger buffer, as pg hands them out.
    const inside = Buffer.concat([Buffer.alloc(3), packed]).subarray(3)
    expect(decodeWindow(inside, 1)).toEqual([
      { value: Number.MAX_VALUE, timeMs: 1_767_614_340_000 },
      { value: 7, timeMs: 1_767_614_400_000 },
      { value: -3.5e-12, timeMs: 1_767_614_400_000 },
      { value: 0.1 + 0.2, timeMs: 1_767_614_400_123.456 },
    ])
    expect(decodeWindow(Buffer.alloc(0), 1)).toEqual([])
  })

  it('refuses a window that is not whole pairs, or out of time order (never a silently different prediction)', () => {
    expect(() => decodeWindow(Buffer.alloc(24), 9)).toThrow(/sensor 9: a window of 24 bytes/)
    expect(() =>
      decodeWindow(
        pack([
          [1, 1000],
          [2, 2000],
        ]),
        9,
      ),
    ).toThrow(/sensor 9: the window came back out of time order/)
  })
})
