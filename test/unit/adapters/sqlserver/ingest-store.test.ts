import { describe, expect, it } from 'vitest'

import type { Param, Row, SqlExecutor } from '../../../../src/lib/adapters/storage/sql/executor.js'
import { bindParams, mssqlDialect, toMssqlPlaceholders } from '../../../../src/lib/adapters/storage/sqlserver/connection.js'
import {
  createSqlServerIngestStore,
  createSqlServerIngestTx,
  createSqlServerProcedureTx,
  MSSQL_MAX_PARAMS,
  PROCEDURE_NAME,
  type SqlServerIngestTx,
  sqlServerValueGuard,
  VALUE_OUT_OF_STORAGE_RANGE,
} from '../../../../src/lib/adapters/storage/sqlserver/ingest-store.js'
import { toMsOrNull } from '../../../../src/lib/adapters/storage/sql/row.js'
import { epochMicros, secondsToMs } from '../../../../src/lib/domain/time.js'
import { LEGACY_DECIMAL_MAX_ABS } from '../../../../src/lib/adapters/storage/sqlserver/value-range.js'
import type { LatestWrite, ReadingRow, StateWrite } from '../../../../src/lib/ports/ingest-store.js'

// ---------------------------------------------------------------- a recording SQL Server stand-in

interface Call {
  sql: string
  params: readonly Param[]
  inTx: boolean
  kind: 'all' | 'run' | 'insert'
}

type Answer = (sql: string, params: readonly Param[]) => Row[] | number | undefined

/**
 * Records every statement. Each one is checked as MssqlPool would send it: as many `?` as parameters,
 * every parameter bindable, and at most MSSQL_MAX_PARAMS (under SQL Server's 2100). A small model of
 * the tables answers the statements of the store (keys already stored, rule states), so results can be
 * told apart from the number of rows sent.
 */
function fakeServer(options: { states?: Record<number, string>; storedKeys?: string[]; recordedKeys?: string[]; answer?: Answer } = {}) {
  const calls: Call[] = []
  const events: string[] = []
  const stored = new Set(options.storedKeys ?? [])
  const recorded = new Set(options.recordedKeys ?? [])

  const check = (sql: string, params: readonly Param[]): void => {
    if (params.length > 0) {
      expect(toMssqlPlaceholders(sql).count, sql.slice(0, 120)).toBe(params.length)
      expect(() => bindParams(params)).not.toThrow()
    }
    expect(params.length).toBeLessThanOrEqual(MSSQL_MAX_PARAMS)
    expect(params.length).toBeLessThan(2100)
  }

  const model = (sql: string, params: readonly Param[]): Row[] | number => {
    const custom = options.answer?.(sql, params)
    if (custom !== undefined) return custom
    if (sql.includes('FROM @out ORDER BY sensor_id')) {
      return params.map((id) => ({ sensor_id: String(id), state: options.states?.[id as number] ?? '{}' }))
    }
    if (sql.startsWith('SELECT k.sensor_id, k.dedup_key')) {
      const set = sql.includes('dbo.ingest_reading_keys') ? recorded : stored
      const out: Row[] = []
      for (let i = 0; i < params.length; i += 2) if (set.has(`${params[i] as number}:${params[i + 1] as string}`)) out.push({ sensor_id: params[i], dedup_key: params[i + 1] })
      return out
    }
    if (sql.includes('INSERT INTO dbo.sensor_readings')) {
      let n = 0
      for (let i = 0; i < params.length; i += 9) {
        const key = params[i + 4] === null ? null : `${params[i] as number}:${params[i + 4] as string}`
        if (key !== null && stored.has(key)) continue
        if (key !== null) stored.add(key)
        n++
      }
      return [{ inserted: n }]
    }
    if (sql.includes('INSERT INTO dbo.ingest_reading_keys')) {
      const out: Row[] = []
      for (let i = 0; i < params.length; i += 2) {
        const key = `${params[i] as number}:${params[i + 1] as string}`
        if (recorded.has(key)) continue
        recorded.add(key)
        out.push({ sensor_id: String(params[i]), dedup_key: params[i + 1] })
      }
      return out
    }
    return []
  }

  // Like the driver: a throw (a failed check, an error the answer raises) is a rejected promise.
  const settle = <T>(f: () => T): Promise<T> => new Promise<T>((resolve) => resolve(f()))

  const make = (inTx: boolean): SqlExecutor => {
    const exec: SqlExecutor = {
      engine: 'sqlserver',
      dialect: mssqlDialect,
      all: <R extends Row>(sql: string, params: readonly Param[] = []): Promise<R[]> =>
        settle(() => {
          check(sql, params)
          calls.push({ sql, params, inTx, kind: 'all' })
          events.push('all')
          const a = model(sql, params)
          return (typeof a === 'number' ? [] : a) as R[]
        }),
      run: (sql, params = []) =>
        settle(() => {
          check(sql, params)
          calls.push({ sql, params, inTx, kind: 'run' })
          events.push('run')
          const a = model(sql, params)
          return typeof a === 'number' ? a : 1
        }),
      insert: (table, values) => {
        calls.push({ sql: `INSERT ${table}`, params: Object.values(values), inTx, kind: 'insert' })
        return Promise.resolve(100 + calls.length)
      },
      transaction: async (fn) => {
        if (inTx) return fn(exec)
        events.push('begin')
        const out = await fn(make(true))
        events.push('commit')
        return out
      },
    }
    return exec
  }
  return { pool: make(false), calls, events, stored, recorded }
}

/** A transaction of the adapter's own shape (the port's `write` plus the parts it runs, tested one by one). */
async function inTx<T>(useProcedure: boolean, s: ReturnType<typeof fakeServer>, fn: (tx: SqlServerIngestTx) => Promise<T>): Promise<T> {
  return s.pool.transaction((exec) => fn(useProcedure ? createSqlServerProcedureTx(exec) : createSqlServerIngestTx(exec)))
}

const T0 = Date.parse('2025-03-01T10:00:00.000Z')

function reading(i: number, over: Partial<ReadingRow> = {}): ReadingRow {
  return {
    sensorId: 7,
    value: 20 + i / 10,
    ingestTime: T0 + 60_000,
    deviceTime: T0 + i * 1000,
    dedupKey: `7:${i}`,
    sequence: i,
    classification: 'ML_PREDICTION',
    reasons: '[]',
    transport: 'http',
    ...over,
  }
}

const code = (sql: string): string => sql.replace(/\s+/g, ' ').trim()
const count = (sql: string, what: string): number => sql.split(what).length - 1

// ---------------------------------------------------------------- engine mode

describe('SQL Server ingest store: lockSensors', () => {
  it('creates missing rows and locks every row with UPDLOCK, HOLDLOCK one id at a time in ascending order', async () => {
    const s = fakeServer({ states: { 3: '{"validReadingsCount":4}' } })
    const states = await inTx(false, s, (tx) => tx.lockSensors([9, 3, 5, 3]))
    expect(s.calls).toHaveLength(1)
    const call = s.calls[0] as Call
    expect(call.params).toEqual([3, 5, 9])
    expect(call.inTx).toBe(true)
    const c = code(call.sql)
    // the loop walks the ids upwards
    expect(c).toContain('DECLARE @id bigint = (SELECT MIN(sensor_id) FROM @ids); WHILE @id IS NOT NULL BEGIN')
    expect(c).toContain('SET @id = (SELECT MIN(sensor_id) FROM @ids WHERE sensor_id > @id); END')
    // inside it: the race-free create, then the row lock, both on the current id only
    const merge = c.indexOf('MERGE dbo.sensor_rule_state WITH (HOLDLOCK) AS t USING (SELECT @id AS sensor_id) AS s ON t.sensor_id = s.sensor_id WHEN NOT MATCHED BY TARGET THEN INSERT')
    const lock = c.indexOf('FROM dbo.sensor_rule_state WITH (UPDLOCK, HOLDLOCK, ROWLOCK) WHERE sensor_id = @id')
    const loop = c.indexOf('WHILE @id IS NOT NULL')
    expect(loop).toBeGreaterThan(0)
    expect(merge).toBeGreaterThan(loop)
    expect(lock).toBeGreaterThan(merge)
    expect(c).not.toMatch(/WHEN MATCHED/)
    expect(c).toMatch(/SELECT sensor_id, state FROM @out ORDER BY sensor_id;$/)
    // bigint ids come back as strings from mssql: numbers; new rows read as {}
    expect(states).toEqual(
      new Map<number, unknown>([
        [3, { validReadingsCount: 4 }],
        [5, {}],
        [9, {}],
      ]),
    )
  })

  it('keeps the global order across chunks of 1000 ids (each chunk ascending, chunks in ascending order)', async () => {
    const s = fakeServer()
    const ids = Array.from({ length: 2500 }, (_, i) => 2500 - i)
    const states = await inTx(false, s, (tx) => tx.lockSensors(ids))
    expect(s.calls.map((c) => c.params.length)).toEqual([1000, 1000, 500])
    const sent = s.calls.flatMap((c) => c.params as number[])
    expect(sent).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1))
    expect(states.size).toBe(2500)
  })

  it('sends nothing for no sensors', async () => {
    const s = fakeServer()
    expect(await inTx(false, s, (tx) => tx.lockSensors([]))).toEqual(new Map())
    expect(s.calls).toEqual([])
  })
})

describe('SQL Server ingest store: existingDedupKeys', () => {
  it('asks dbo.sensor_readings in chunks of 500 pairs and answers with the caller keys', async () => {
    const pairs = Array.from({ length: 1100 }, (_, i) => ({ sensorId: 7, dedupKey: `7:${i}` }))
    const s = fakeServer({ storedKeys: ['7:7:3', '7:7:999', '7:7:1099', '8:7:4'] })
    const found = await inTx(false, s, (tx) => tx.existingDedupKeys([...pairs, pairs[3] as { sensorId: number; dedupKey: string }]))
    expect(found).toEqual(new Set(['7:7:3', '7:7:999', '7:7:1099']))
    expect(s.calls.map((c) => c.params.length)).toEqual([1000, 1000, 200])
    const c = code(s.calls[0]?.sql ?? '')
    expect(c).toMatch(/^SELECT k\.sensor_id, k\.dedup_key FROM \(VALUES \(\?, \?\), /)
    expect(c).toContain('WHERE EXISTS (SELECT 1 FROM dbo.sensor_readings r WHERE r.sensor_id = k.sensor_id AND r.dedup_key = k.dedup_key)')
    expect(s.calls[0]?.params.slice(0, 4)).toEqual([7, '7:0', 7, '7:1'])
  })
})

describe('SQL Server ingest store: insertReadings', () => {
  it('sends multi-row INSERT ... SELECT chunks of at most 200 rows (1800 parameters), in order, with UTC datetime2 values', async () => {
    const rows = Array.from({ length: 450 }, (_, i) => reading(i))
    rows[1] = reading(1, { deviceTime: null, dedupKey: null, sequence: null })
    const s = fakeServer()
    const n = await inTx(false, s, (tx) => tx.insertReadings(rows))
    expect(n).toBe(450)
    expect(s.calls.map((c) => c.params.length)).toEqual([1800, 1800, 450])
    const first = s.calls[0] as Call
    expect(first.params.slice(0, 9)).toEqual([7, 20, new Date(T0 + 60_000), new Date(T0), '7:0', 0, 'ML_PREDICTION', '[]', 'http'])
    expect(first.params.slice(9, 18)).toEqual([7, 20.1, new Date(T0 + 60_000), null, null, null, 'ML_PREDICTION', '[]', 'http'])
    expect((first.params[2] as Date).toISOString()).toBe('2025-03-01T10:01:00.000Z')
    const kinds = bindParams(first.params.slice(0, 9)).map((p) => p.kind)
    expect(kinds).toEqual(['Int', 'Int', 'DateTime2', 'DateTime2', 'NVarChar(max)', 'Int', 'NVarChar(max)', 'NVarChar(max)', 'NVarChar(max)'])
    // every row of every chunk, in the caller's order
    expect(s.calls.flatMap((c) => c.params.filter((_, i) => i % 9 === 4))).toEqual(rows.map((r) => r.dedupKey))
  })

  it('keeps a device time\'s microseconds in the datetime2 parameter (tedious nanosecondDelta) and reads them back', async () => {
    const s = fakeServer()
    const deviceTime = secondsToMs(T0 / 1000 + 0.123456)
    await inTx(false, s, (tx) => tx.insertReadings([reading(0, { deviceTime })]))
    const param = s.calls[0]?.params[3] as Date & { nanosecondDelta?: number }
    expect(param.toISOString()).toBe('2025-03-01T10:00:00.123Z')
    expect(param.nanosecondDelta).toBeCloseTo(0.000456, 12)
    expect(bindParams([param])[0]).toMatchObject({ kind: 'DateTime2' })
    // A whole-millisecond time carries no delta (as before).
    expect((s.calls[0]?.params[2] as Date & { nanosecondDelta?: number }).nanosecondDelta).toBeUndefined()
    // tedious returns datetime2 with `nanosecondsDelta` (seconds below the millisecond): the decoder adds it.
    const read = Object.defineProperty(new Date(T0 + 123), 'nanosecondsDelta', { value: 0.000456 })
    expect(epochMicros(toMsOrNull(read) ?? 0)).toBe(epochMicros(deviceTime))
  })

  it('never stores a (sensor_id, dedup_key) that is already stored: NOT EXISTS per chunk, ROW_NUMBER within it, no reliance on the unique index', async () => {
    const s = fakeServer()
    await inTx(false, s, (tx) => tx.insertReadings([reading(0), reading(1)]))
    const c = code(s.calls[0]?.sql ?? '')
    expect(c).toContain('INSERT INTO dbo.sensor_readings (sensor_id, value, [timestamp], device_timestamp, dedup_key, [sequence], classification, reason_codes, transport) OUTPUT INSERTED.id INTO @inserted (id) SELECT')
    expect(c).toContain('FROM (VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?), (2, ?, ?, ?, ?, ?, ?, ?, ?, ?)) AS d(n, sensor_id, value, ts, device_ts, dedup_key, seq, classification, reason_codes, transport)')
    expect(c).toContain('ROW_NUMBER() OVER (PARTITION BY d.sensor_id, d.dedup_key ORDER BY d.n) AS rn')
    expect(c).toContain('WHERE v.dedup_key IS NULL OR (v.rn = 1 AND NOT EXISTS (SELECT 1 FROM dbo.sensor_readings r WHERE r.sensor_id = v.sensor_id AND r.dedup_key = v.dedup_key)) ORDER BY v.n;')
    expect(c).toMatch(/SELECT COUNT\(\*\) AS inserted FROM @inserted;$/)
    expect(c).not.toMatch(/ON CONFLICT|IGNORE_DUP_KEY|BEGIN TRY/)
  })

  it('returns what the server counted, not the rows sent', async () => {
    const s = fakeServer({ storedKeys: ['7:7:1', '7:7:250'] })
    const rows = Array.from({ length: 260 }, (_, i) => reading(i))
    expect(await inTx(false, s, (tx) => tx.insertReadings(rows))).toBe(258)
    // and the count comes from the COUNT row, whatever rowsAffected says
    const s2 = fakeServer({ answer: (sql) => (sql.includes('INSERT INTO dbo.sensor_readings') ? [{ inserted: '3' }] : undefined) })
    expect(await inTx(false, s2, (tx) => tx.insertReadings(rows))).toBe(6)
  })

  it('sends a repeated (sensor, key) of one call once, even across chunks', async () => {
    const rows = Array.from({ length: 300 }, (_, i) => reading(i))
    rows.push(reading(5, { value: 99 }), reading(299, { sensorId: 8 }))
    const s = fakeServer()
    expect(await inTx(false, s, (tx) => tx.insertReadings(rows))).toBe(301)
    const keys = s.calls.flatMap((c) => c.params.filter((_, i) => i % 9 === 4))
    expect(keys).toHaveLength(301)
    expect(keys.filter((k) => k === '7:5')).toHaveLength(1)
    expect(s.calls.flatMap((c) => c.params.filter((_, i) => i % 9 === 1))).not.toContain(99)
  })

  it('refuses a value decimal(15,5) cannot hold before anything is sent', async () => {
    const s = fakeServer()
    await expect(inTx(false, s, (tx) => tx.insertReadings([reading(0), reading(1, { value: 1e10 })]))).rejects.toMatchObject({ code: 'BUG', message: expect.stringContaining(VALUE_OUT_OF_STORAGE_RANGE) as unknown })
    expect(s.calls).toEqual([])
  })

  it('sends nothing for no rows', async () => {
    const s = fakeServer()
    expect(await inTx(false, s, (tx) => tx.insertReadings([]))).toBe(0)
    expect(s.calls).toEqual([])
  })
})

describe('SQL Server ingest store: moveLatest', () => {
  it('is one MERGE WITH (HOLDLOCK) whose only update is guarded to move forward in time', async () => {
    const s = fakeServer()
    const rows: LatestWrite[] = [
      { sensorId: 7, value: 1, time: T0 },
      { sensorId: 8, value: 2, time: T0 + 5 },
    ]
    await inTx(false, s, (tx) => tx.moveLatest(rows))
    expect(s.calls).toHaveLength(1)
    const c = code(s.calls[0]?.sql ?? '')
    expect(c).toMatch(/^MERGE dbo\.sensor_readings_latest WITH \(HOLDLOCK\) AS t USING \(VALUES \(\?, \?, \?\), \(\?, \?, \?\)\) AS s\(sensor_id, latest_value, latest_timestamp\) ON t\.sensor_id = s\.sensor_id /)
    expect(count(c, 'WHEN MATCHED')).toBe(1)
    expect(c).toContain('WHEN MATCHED AND (t.latest_timestamp IS NULL OR t.latest_timestamp <= s.latest_timestamp) THEN UPDATE SET latest_value = s.latest_value, latest_timestamp = s.latest_timestamp')
    expect(c).toMatch(/WHEN NOT MATCHED BY TARGET THEN INSERT \(sensor_id, latest_value, latest_timestamp\) VALUES \(s\.sensor_id, s\.latest_value, s\.latest_timestamp\);$/)
    expect(c).not.toMatch(/WHEN NOT MATCHED BY SOURCE|DELETE/)
    expect(s.calls[0]?.params).toEqual([7, 1, new Date(T0), 8, 2, new Date(T0 + 5)])
  })

  it('sends one source row per sensor (MERGE refuses two), the latest one, in chunks of 500', async () => {
    const rows: LatestWrite[] = []
    for (let id = 1; id <= 700; id++) rows.push({ sensorId: id, value: id, time: T0 + id })
    rows.push({ sensorId: 3, value: -1, time: T0 - 1 }, { sensorId: 4, value: -2, time: T0 + 10_000 })
    const s = fakeServer()
    await inTx(false, s, (tx) => tx.moveLatest(rows))
    expect(s.calls.map((c) => c.params.length)).toEqual([1500, 600])
    const sent = s.calls.flatMap((c) => c.params)
    const triples = Array.from({ length: sent.length / 3 }, (_, i) => sent.slice(i * 3, i * 3 + 3))
    expect(triples.filter((t) => t[0] === 3)).toEqual([[3, 3, new Date(T0 + 3)]])
    expect(triples.filter((t) => t[0] === 4)).toEqual([[4, -2, new Date(T0 + 10_000)]])
    expect(triples).toHaveLength(700)
  })

  it('sends nothing for no rows', async () => {
    const s = fakeServer()
    await inTx(false, s, (tx) => tx.moveLatest([]))
    expect(s.calls).toEqual([])
  })
})

describe('SQL Server ingest store: saveStates', () => {
  const state = (sensorId: number, changed: boolean, over: Partial<StateWrite> = {}): StateWrite => ({
    sensorId,
    state: `{"n":${sensorId}}`,
    operationalState: 'NORMAL',
    validReadingsCount: 10,
    stateChangedAt: T0,
    changed,
    ...over,
  })

  it('updates every rule state in one UPDATE ... FROM (VALUES) and the changed sensors in another', async () => {
    const s = fakeServer()
    await inTx(false, s, (tx) => tx.saveStates([state(1, false), state(2, true), state(3, true, { stateChangedAt: null, operationalState: 'INITIALIZING', validReadingsCount: 3 })]))
    expect(s.calls).toHaveLength(2)
    expect(code(s.calls[0]?.sql ?? '')).toBe(
      'UPDATE s SET state = v.state, updated_at = SYSUTCDATETIME() FROM dbo.sensor_rule_state AS s JOIN (VALUES (?, ?), (?, ?), (?, ?)) AS v(sensor_id, state) ON s.sensor_id = v.sensor_id;',
    )
    expect(s.calls[0]?.params).toEqual([1, '{"n":1}', 2, '{"n":2}', 3, '{"n":3}'])
    expect(code(s.calls[1]?.sql ?? '')).toBe(
      'UPDATE s SET operational_state = v.operational_state, valid_readings_count = v.valid_readings_count, state_changed_at = v.state_changed_at FROM dbo.sensors AS s JOIN (VALUES (?, ?, ?, ?), (?, ?, ?, ?)) AS v(id, operational_state, valid_readings_count, state_changed_at) ON s.id = v.id;',
    )
    expect(s.calls[1]?.params).toEqual([2, 'NORMAL', 10, new Date(T0), 3, 'INITIALIZING', 3, null])
  })

  it('chunks under the parameter limit and sends one row per sensor (the last)', async () => {
    const states = Array.from({ length: 1001 }, (_, i) => state(i + 1, true))
    states.push(state(5, true, { state: '{"last":true}' }))
    const s = fakeServer()
    await inTx(false, s, (tx) => tx.saveStates(states))
    expect(s.calls.map((c) => c.params.length)).toEqual([1000, 1000, 2, 1600, 1600, 804])
    const ruleParams = s.calls.slice(0, 3).flatMap((c) => c.params)
    expect(ruleParams.filter((p) => p === 5)).toHaveLength(1)
    expect(ruleParams[ruleParams.indexOf(5) + 1]).toBe('{"last":true}')
  })

  it('sends nothing for no states, and no sensors update when nothing changed', async () => {
    const s = fakeServer()
    await inTx(false, s, (tx) => tx.saveStates([]))
    expect(s.calls).toEqual([])
    await inTx(false, s, (tx) => tx.saveStates([state(1, false)]))
    expect(s.calls).toHaveLength(1)
  })
})

describe('SQL Server ingest store: rules and effects reuse the shared SQL', () => {
  it('loadRules reads thresholds and delta rules; applyEffects opens alerts through the shared writer', async () => {
    const s = fakeServer({
      answer: (sql) => {
        if (sql.includes('FROM "sensors" WHERE "id" IN')) return [{ id: '7', device_id: '2', sensor_type: 'temperature', min_readings_for_normal: 10, resolve_after_readings: null }]
        return undefined
      },
    })
    const rules = await inTx(false, s, (tx) => tx.loadRules([7]))
    expect(rules.get(7)).toMatchObject({ sensorId: 7, deviceId: 2, resolveAfterReadings: 3 })
    expect(s.calls.map((c) => c.sql).join('\n')).toMatch(/"alert_thresholds"[\s\S]*"delta_thresholds"/)
    const opened = await inTx(false, s, (tx) => tx.applyEffects([{ sensorId: 7, deviceId: 2, effect: { kind: 'open_alert', severity: 'critical', thresholdId: 4, value: 99, time: T0 } }]))
    expect(opened).toHaveLength(1)
    expect(s.calls.at(-1)).toMatchObject({ kind: 'insert', sql: 'INSERT alerts' })
    expect(s.calls.at(-1)?.params).toContainEqual(new Date(T0))
  })
})

describe('SQL Server ingest store: one transaction per flush', () => {
  it('runs every statement of a flush inside the one transaction and returns its result', async () => {
    const s = fakeServer()
    const out = await inTx(false, s, async (tx) => {
      await tx.lockSensors([7])
      await tx.existingDedupKeys([{ sensorId: 7, dedupKey: '7:1' }])
      await tx.insertReadings([reading(1)])
      await tx.moveLatest([{ sensorId: 7, value: 1, time: T0 }])
      await tx.saveStates([{ sensorId: 7, state: '{}', operationalState: 'NORMAL', validReadingsCount: 1, stateChangedAt: null, changed: true }])
      return 'done'
    })
    expect(out).toBe('done')
    expect(s.events[0]).toBe('begin')
    expect(s.events.at(-1)).toBe('commit')
    expect(s.calls).toHaveLength(6)
    expect(s.calls.every((c) => c.inTx)).toBe(true)
  })
})

// ---------------------------------------------------------------- value guard and capabilities

describe('sqlServerValueGuard and the store capabilities', () => {
  it('rejects exactly what decimal(15,5) cannot hold', () => {
    for (const v of [0, -123.456, 9_999_999_999.99999, -9_999_999_999.99999, LEGACY_DECIMAL_MAX_ABS]) expect(sqlServerValueGuard(v), String(v)).toBeNull()
    for (const v of [1e10, -1e10, 9_999_999_999.999996, 1e300, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) expect(sqlServerValueGuard(v), String(v)).toBe('VALUE_OUT_OF_STORAGE_RANGE')
  })

  it('exposes the guard on both modes, and classifiesItself only in procedure mode', () => {
    const s = fakeServer()
    const engine = createSqlServerIngestStore(s.pool, { useProcedure: false })
    const proc = createSqlServerIngestStore(s.pool, { useProcedure: true })
    expect(engine.capabilities.classifiesItself).toBe(false)
    expect(proc.capabilities.classifiesItself).toBe(true)
    // toHaveProperty compares the function itself without detaching the method from its store.
    expect(engine).toHaveProperty('valueGuard', sqlServerValueGuard)
    expect(proc).toHaveProperty('valueGuard', sqlServerValueGuard)
  })
})

// ---------------------------------------------------------------- procedure mode

describe('SQL Server ingest store, procedure mode (IOT_MSSQL_PROCEDURE=1)', () => {
  it('existingDedupKeys reads dbo.ingest_reading_keys, not sensor_readings', async () => {
    const s = fakeServer({ recordedKeys: ['7:7:2'], storedKeys: ['7:7:1'] })
    const found = await inTx(true, s, (tx) => tx.existingDedupKeys([1, 2, 3].map((i) => ({ sensorId: 7, dedupKey: `7:${i}` }))))
    expect(found).toEqual(new Set(['7:7:2']))
    expect(code(s.calls[0]?.sql ?? '')).toContain('WHERE EXISTS (SELECT 1 FROM dbo.ingest_reading_keys r WHERE r.sensor_id = k.sensor_id AND r.dedup_key = k.dedup_key)')
    expect(s.calls.map((c) => c.sql).join('\n')).not.toContain('sensor_readings')
  })

  it('records the keys first, then EXECs the procedure once per reading in the given order, never inserting readings itself', async () => {
    const rows = [reading(0), reading(1, { dedupKey: null, deviceTime: null }), reading(2, { sensorId: 9, value: 23 }), reading(3, { value: 3e9 })]
    const s = fakeServer()
    const n = await inTx(true, s, (tx) => tx.insertReadings(rows))
    expect(n).toBe(4)
    expect(s.calls).toHaveLength(2)
    const [keys, exec] = s.calls as [Call, Call]
    expect(code(keys.sql)).toContain('INSERT INTO dbo.ingest_reading_keys (sensor_id, dedup_key) OUTPUT INSERTED.sensor_id, INSERTED.dedup_key INTO @keys (sensor_id, dedup_key) SELECT')
    expect(code(keys.sql)).toContain('WHERE v.rn = 1 AND NOT EXISTS (SELECT 1 FROM dbo.ingest_reading_keys k WITH (UPDLOCK, HOLDLOCK) WHERE k.sensor_id = v.sensor_id AND k.dedup_key = v.dedup_key);')
    expect(keys.params).toEqual([7, '7:0', 9, '7:2', 7, '7:3'])
    // typed variables, one assignment + EXEC per reading, in order
    const c = code(exec.sql)
    expect(c).toMatch(/^DECLARE @sensor_id bigint, @value float, @device_timestamp datetime2\(7\);/)
    expect(count(c, `EXEC ${PROCEDURE_NAME} @p_sensor_id = @sensor_id, @p_value = @value, @p_device_timestamp = @device_timestamp;`)).toBe(4)
    expect(count(c, 'SELECT @sensor_id = ?, @value = ?, @device_timestamp = ?; EXEC')).toBe(4)
    expect(exec.params).toEqual([7, 20, new Date(T0), 7, 20.1, null, 9, 23, new Date(T0 + 2000), 7, 3e9, new Date(T0 + 3000)])
    expect(bindParams(exec.params.slice(0, 3)).map((p) => p.kind)).toEqual(['Int', 'Int', 'DateTime2'])
    expect(bindParams(exec.params.slice(3, 6)).map((p) => p.kind)).toEqual(['Int', 'Float', 'Null'])
    expect(s.calls.map((x) => x.sql).join('\n')).not.toMatch(/INSERT INTO dbo\.sensor_readings\b/)
  })

  it('skips the EXEC of a reading whose key was already recorded (the backstop), and counts only what it handed over', async () => {
    const s = fakeServer({ recordedKeys: ['7:7:1'] })
    const rows = [reading(0), reading(1), reading(2), reading(2, { value: 5 })]
    const n = await inTx(true, s, (tx) => tx.insertReadings(rows))
    expect(n).toBe(2)
    const exec = s.calls[1] as Call
    expect(exec.params).toEqual([7, 20, new Date(T0), 7, 20.2, new Date(T0 + 2000)])
  })

  it('chunks keys and EXECs under the parameter limit and keeps the order across chunks', async () => {
    const rows = Array.from({ length: 450 }, (_, i) => reading(i, { dedupKey: i % 3 === 0 ? null : `7:${i}` }))
    const s = fakeServer()
    expect(await inTx(true, s, (tx) => tx.insertReadings(rows))).toBe(450)
    const keyCalls = s.calls.filter((c) => c.sql.includes('ingest_reading_keys'))
    const execCalls = s.calls.filter((c) => c.sql.includes(PROCEDURE_NAME))
    expect(keyCalls.map((c) => c.params.length)).toEqual([400, 200])
    expect(execCalls.map((c) => c.params.length)).toEqual([600, 600, 150])
    // every key is recorded before the first EXEC
    expect(s.calls.findIndex((c) => c.sql.includes(PROCEDURE_NAME))).toBe(keyCalls.length)
    const values = execCalls.flatMap((c) => c.params.filter((_, i) => i % 3 === 1))
    expect(values).toEqual(rows.map((r) => r.value))
  })

  it('refuses an out-of-range value before recording or EXECing anything', async () => {
    const s = fakeServer()
    await expect(inTx(true, s, (tx) => tx.insertReadings([reading(0), reading(1, { value: -2e10 })]))).rejects.toMatchObject({ code: 'BUG' })
    expect(s.calls).toEqual([])
  })

  it('moveLatest, saveStates and applyEffects send nothing (the procedure owns state); lockSensors still locks', async () => {
    const s = fakeServer()
    const opened = await inTx(true, s, async (tx) => {
      await tx.moveLatest([{ sensorId: 7, value: 1, time: T0 }])
      await tx.saveStates([{ sensorId: 7, state: '{}', operationalState: 'NORMAL', validReadingsCount: 1, stateChangedAt: null, changed: true }])
      return tx.applyEffects([{ sensorId: 7, deviceId: 2, effect: { kind: 'open_alert', severity: 'critical', thresholdId: 4, value: 99, time: T0 } }])
    })
    expect(opened).toEqual([])
    expect(s.calls).toEqual([])
    await inTx(true, s, (tx) => tx.lockSensors([2, 1]))
    expect(code(s.calls[0]?.sql ?? '')).toContain('WITH (UPDLOCK, HOLDLOCK, ROWLOCK)')
    expect(s.calls[0]?.params).toEqual([1, 2])
  })

  it('loadRules is one query on dbo.sensors: existence and device, no thresholds, no delta rule', async () => {
    const s = fakeServer({ answer: (sql) => (sql.includes('FROM dbo.sensors') ? [{ id: '7', device_id: '2', sensor_type: 'humidity' }] : undefined) })
    const rules = await inTx(true, s, (tx) => tx.loadRules([7, 8, 7]))
    expect(s.calls).toHaveLength(1)
    expect(s.calls[0]?.sql).toBe('SELECT id, device_id, sensor_type FROM dbo.sensors WHERE id IN (?, ?)')
    expect(s.calls[0]?.params).toEqual([7, 8])
    expect([...rules.keys()]).toEqual([7])
    expect(rules.get(7)).toEqual({ sensorId: 7, deviceId: 2, sensorType: 'humidity', minReadingsForNormal: 10, resolveAfterReadings: 0, thresholds: [], delta: null })
  })
})
