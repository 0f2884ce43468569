import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { SqlExecutor } from '../../src/lib/adapters/storage/sql/executor.js'
import { toMsOrNull } from '../../src/lib/adapters/storage/sql/row.js'
import { parseRegistryFile } from '../../src/lib/app/apply-registry.js'
import type { AppContext } from '../../src/lib/app/context.js'
import { type BatchPredictOptions, runBatchPredict } from '../../src/lib/app/jobs/batch-predict.js'
import { loadConfig } from '../../src/lib/config/index.js'
import { createLogger } from '../../src/lib/log/index.js'
import type { Clock } from '../../src/lib/ports/clock.js'
import type { Database } from '../../src/lib/ports/storage.js'
import { availableEngines, type EngineHandle } from '../helpers/engines.js'

/**
 * `batch predict` on real data, on every engine (SQL Server when MSSQL_URL is set): one prediction with every
 * column per sensor with new readings, PRED_THRESHOLD_BREACH events with notifications (deduplicated),
 * nothing written twice by repeated, concurrent or sharded runs, a failing sensor isolated by its savepoint.
 */

const engines = await availableEngines()
const T0 = Date.UTC(2026, 0, 5, 12, 0, 0)
const uuid = (group: number, i: number): string => `${group.toString(16).padStart(8, '0')}-0000-4000-8000-${i.toString(16).padStart(12, '0')}`
const MANY = 1000

class TestClock implements Clock {
  constructor(public t: number) {}
  now = (): number => this.t
  sleep = (): Promise<void> => Promise.resolve()
}

function contextFor(db: Database, clock: Clock, env: Record<string, string> = {}): AppContext {
  const { config } = loadConfig({ env: { LOG_LEVEL: 'silent', ...env } })
  return { config, logger: createLogger({ level: 'silent' }), clock, iot: db, universal: db, databases: [db], close: () => Promise.resolve() }
}

/** The engine's own executor, for seeding readings and reading rows back. */
function writer(h: EngineHandle): SqlExecutor {
  const db = h.db as unknown as { pool?: SqlExecutor; connection?: SqlExecutor }
  const exec = db.connection ?? db.pool
  if (!exec) throw new Error('no executor')
  return exec
}

/** Readings `values` of one sensor a minute apart, ending at `end`. */
async function addReadings(exec: SqlExecutor, rows: Array<{ sensorId: number; values: number[]; end: number }>): Promise<void> {
  const flat: Array<[number, number, Date]> = []
  for (const r of rows) r.values.forEach((v, i) => flat.push([r.sensorId, v, new Date(r.end - (r.values.length - 1 - i) * 60_000)]))
  for (let i = 0; i < flat.length; i += 400) {
    const part = flat.slice(i, i + 400)
    await exec.run(`INSERT INTO "sensor_readings" ("sensor_id", "value", "timestamp", "device_timestamp") VALUES ${part.map(() => '(?, ?, ?, ?)').join(', ')}`, part.flatMap(([s, v, t]) => [s, v, t, t]))
  }
}

const count = async (exec: SqlExecutor, sql: string, params: Array<string | number> = []): Promise<number> => Number((await exec.all(sql, params))[0]?.['n'])

const FLAT = [10, 10, 10, 10, 10, 10, 10, 10, 10]

for (const engine of engines) {
  describe(`batch predict on ${engine.name}`, () => {
    let h: EngineHandle
    let exec: SqlExecutor
    let spike = 0
    let quiet = 0
    let deviceId = 0
    let many: number[] = []
    const clock = new TestClock(T0 + 60_000)
    const options = (over: Partial<BatchPredictOptions> = {}): BatchPredictOptions => ({ window: 60, horizonMinutes: 10, dedupeMinutes: 10, shard: null, concurrency: 2, ...over })

    beforeAll(async () => {
      h = await engine.open({ migrated: true })
      exec = writer(h)
      const spec = parseRegistryFile(
        JSON.stringify({
          devices: [
            {
              uuid: uuid(1, 0),
              name: 'rig',
              sensors: [
                { uuid: uuid(1, 1), type: 'temperature', name: 'spike', thresholds: [{ name: 'warm', condition: 'greater_than', min: 12, severity: 'warning' }] },
                { uuid: uuid(1, 2), type: 'temperature', name: 'quiet' },
              ],
            },
            { uuid: uuid(2, 0), name: 'many', sensors: Array.from({ length: MANY }, (_, i) => ({ uuid: uuid(2, i + 1), type: 'level', name: `m${i}` })) },
          ],
        }),
        'predict.json',
      )
      const [rig, bulk] = await h.db.registry.applyDevices(spec.devices, { prune: false, dryRun: false })
      if (!rig || !bulk) throw new Error('not registered')
      deviceId = rig.id
      spike = rig.sensors.find((s) => s.uuid === uuid(1, 1))?.id ?? 0
      quiet = rig.sensors.find((s) => s.uuid === uuid(1, 2))?.id ?? 0
      many = bulk.sensors.map((s) => s.id)
    }, 120_000)
    afterAll(async () => {
      await h.dispose()
    })

    it('a spike: one prediction with every column, is_anomaly, one PRED_THRESHOLD_BREACH with its notification', async () => {
      await addReadings(exec, [
        { sensorId: spike, values: [...FLAT, 40], end: T0 },
        { sensorId: quiet, values: [5, 5.5], end: T0 },
      ])
      const ctx = contextFor(h.db, clock)
      const r = await runBatchPredict(ctx, options())
      expect(r).toMatchObject({ predictions: 2, events: 1, failed: 0 })
      const rows = await exec.all(`SELECT * FROM "predictions" WHERE "sensor_id" = ?`, [spike])
      expect(rows).toHaveLength(1)
      const p = rows[0] ?? {}
      for (const col of ['model_id', 'sensor_id', 'device_id', 'predicted_value', 'confidence', 'predicted_at', 'target_timestamp', 'horizon_minutes', 'trend', 'window_points', 'is_anomaly', 'anomaly_score', 'risk_level', 'severity', 'status']) {
        expect(p[col], col).not.toBeNull()
        expect(p[col], col).not.toBeUndefined()
      }
      expect(Number(p['predicted_value'])).toBeCloseTo(13, 4)
      expect(Number(p['confidence'])).toBeCloseTo(10 / 60, 4)
      expect(Number(p['device_id'])).toBe(deviceId)
      expect(Number(p['is_anomaly'])).toBe(1)
      expect(Number(p['anomaly_score'])).toBe(1)
      expect(p).toMatchObject({ trend: 'up', risk_level: 'high', severity: 'critical', status: 'active' })
      expect(Number(p['window_points'])).toBe(10)
      expect(Number(p['horizon_minutes'])).toBe(10)
      expect(toMsOrNull(p['target_timestamp'])).toBe(clock.t + 600_000)
      const model = await exec.all(`SELECT "model_name", "model_type", "sensor_id" FROM "ml_models" WHERE "id" = ?`, [Number(p['model_id'])])
      expect(model[0]).toMatchObject({ model_name: 'baseline_moving_average', model_type: 'baseline' })

      const events = await exec.all(`SELECT * FROM "ml_events" WHERE "event_code" = 'PRED_THRESHOLD_BREACH'`)
      expect(events).toHaveLength(1)
      expect(events[0]).toMatchObject({ event_type: 'warning', status: 'active', title: 'Predicción viola umbral: warm' })
      expect(Number(events[0]?.['prediction_id'])).toBe(Number(p['id']))
      expect(Number(events[0]?.['sensor_id'])).toBe(spike)
      const payload = events[0]?.['payload']
      expect(typeof payload === 'string' ? JSON.parse(payload) : payload).toMatchObject({ condition_type: 'greater_than', threshold_value_min: 12 })
      const notes = await exec.all(`SELECT * FROM "alert_notifications" WHERE "source" = 'ml_event' AND "source_event_id" = ?`, [Number(events[0]?.['id'])])
      expect(notes).toHaveLength(1)
      expect(notes[0]).toMatchObject({ severity: 'warning', event_type: 'PRED_THRESHOLD_BREACH' })
      expect(Number(notes[0]?.['sensor_id'])).toBe(spike)
    })

    it('a second run with no new readings writes nothing', async () => {
      const before = await count(exec, `SELECT COUNT(*) AS n FROM "predictions"`)
      const r = await runBatchPredict(contextFor(h.db, clock), options())
      expect(r).toMatchObject({ predictions: 0, events: 0, failed: 0 })
      expect(r.skipped).toBe(r.sensors)
      expect(await count(exec, `SELECT COUNT(*) AS n FROM "predictions"`)).toBe(before)
    })

    it('a new reading inside --dedupe-minutes: a new prediction, no second event; after it: a new event', async () => {
      await addReadings(exec, [{ sensorId: spike, values: [41], end: T0 + 60_000 }])
      const r1 = await runBatchPredict(contextFor(h.db, clock), options())
      expect(r1).toMatchObject({ predictions: 1, events: 0 })
      clock.t += 11 * 60_000
      await addReadings(exec, [{ sensorId: spike, values: [42], end: T0 + 120_000 }])
      const r2 = await runBatchPredict(contextFor(h.db, clock), options())
      expect(r2).toMatchObject({ predictions: 1, events: 1 })
      expect(await count(exec, `SELECT COUNT(*) AS n FROM "predictions" WHERE "sensor_id" = ?`, [spike])).toBe(3)
      expect(await count(exec, `SELECT COUNT(*) AS n FROM "ml_events" WHERE "event_code" = 'PRED_THRESHOLD_BREACH'`)).toBe(2)
      expect(await count(exec, `SELECT COUNT(*) AS n FROM "alert_notifications" WHERE "source" = 'ml_event'`)).toBe(2)
    })

    it('two concurrent runs over 1 000 sensors leave exactly 1 000 predictions', async () => {
      await addReadings(exec, many.map((sensorId, i) => ({ sensorId, values: [i % 7, (i % 5) + 1, (i % 3) + 2], end: T0 })))
      // A second handle on the same database: two pools (PostgreSQL, SQL Server) or connections (SQLite), as two cron runs.
      const other = await openSecond(h)
      try {
        const [a, b] = await Promise.all([runBatchPredict(contextFor(h.db, clock), options({ batchSize: 100 })), runBatchPredict(contextFor(other, clock), options({ batchSize: 100 }))])
        expect(a.failed + b.failed).toBe(0)
        expect(a.predictions + b.predictions).toBe(MANY)
      } finally {
        await other.close()
      }
      expect(await count(exec, `SELECT COUNT(*) AS n FROM "predictions" WHERE "sensor_id" IN (SELECT "id" FROM "sensors" WHERE "device_id" <> ?)`, [deviceId])).toBe(MANY)
      expect(await count(exec, `SELECT COUNT(*) AS n FROM (SELECT "sensor_id" FROM "predictions" GROUP BY "sensor_id" HAVING COUNT(*) > 1) d WHERE "sensor_id" <> ?`, [spike])).toBe(0)
      expect(await count(exec, `SELECT COUNT(*) AS n FROM "ml_models" WHERE "model_type" = 'baseline'`)).toBe(MANY + 2)
    }, 120_000)

    it('--shard 0/2 and 1/2 together cover every sensor once', async () => {
      clock.t += 60_000
      await addReadings(exec, many.map((sensorId) => ({ sensorId, values: [7], end: T0 + 60_000 })))
      const ctx = contextFor(h.db, clock)
      const s0 = await runBatchPredict(ctx, options({ shard: { index: 0, count: 2 } }))
      const s1 = await runBatchPredict(ctx, options({ shard: { index: 1, count: 2 } }))
      expect(s0.sensors + s1.sensors).toBe(MANY + 2)
      expect(s0.predictions + s1.predictions).toBe(MANY)
      expect(Math.abs(s0.predictions - s1.predictions)).toBeLessThanOrEqual(2)
      const per = await exec.all(`SELECT "sensor_id", COUNT(*) AS n FROM "predictions" WHERE "predicted_at" = ? GROUP BY "sensor_id"`, [new Date(clock.t)])
      expect(per).toHaveLength(MANY)
      expect(per.every((r) => Number(r['n']) === 1)).toBe(true)
    }, 120_000)

    it('a sensor whose insert fails is isolated by its savepoint: the others are stored, its watermark stays', async () => {
      const victim = many[3] ?? 0
      await addReadings(exec, many.slice(0, 10).map((sensorId) => ({ sensorId, values: [9], end: T0 + 120_000 })))
      await installFailingTrigger(h, exec, victim)
      clock.t += 60_000
      const r = await runBatchPredict(contextFor(h.db, clock), options())
      expect(r).toMatchObject({ predictions: 9, failed: 1 })
      expect(r.failures[0]?.sensorId).toBe(victim)
      const runs = await exec.all(`SELECT "status", "counts" FROM "job_runs" WHERE "job" = 'batch predict' ORDER BY "id" DESC`)
      expect(runs[0]?.['status']).toBe('failed')
      await dropFailingTrigger(h, exec)
      const again = await runBatchPredict(contextFor(h.db, clock), options())
      expect(again).toMatchObject({ predictions: 1, failed: 0 })
      expect((await exec.all(`SELECT "status" FROM "job_runs" WHERE "job" = 'batch predict' ORDER BY "id" DESC`))[0]?.['status']).toBe('succeeded')
    }, 60_000)

    it('taylor writes its own model and a forecast from the derivatives', async () => {
      const sensor = many[20] ?? 0
      await addReadings(exec, [{ sensorId: sensor, values: [0, 5, 9, 12, 14], end: T0 + 600_000 }])
      clock.t += 60_000
      const r = await runBatchPredict(contextFor(h.db, clock, { ML_TAYLOR_ORDER: '2' }), options({ engine: 'taylor' }))
      expect(r.failed).toBe(0)
      const rows = await exec.all(`SELECT p."predicted_value", m."model_type" FROM "predictions" p JOIN "ml_models" m ON m."id" = p."model_id" WHERE p."sensor_id" = ? AND m."model_type" = 'taylor'`, [sensor])
      expect(rows).toHaveLength(1)
      // The window (by time): ..., 0, 5, 9, 12, 14 a minute apart -> Δt 60 s: f' = 2/60, f'' = -1/3600, h = 60 -> 14 + 2 - 0.5.
      expect(Number(rows[0]?.['predicted_value'])).toBeCloseTo(15.5, 4)
    })

    // Last: it registers a sensor, which the sensor counts above do not expect.
    it('the window: the newest readings by device time (else ingest time), ties by id, oldest first, whatever the insert order', async () => {
      const spec = parseRegistryFile(JSON.stringify({ devices: [{ uuid: uuid(3, 0), name: 'late', sensors: [{ uuid: uuid(3, 1), type: 'temperature', name: 'late' }] }] }), 'late.json')
      const [dev] = await h.db.registry.applyDevices(spec.devices, { prune: false, dryRun: false })
      const sensorId = dev?.sensors[0]?.id ?? 0
      const at = (min: number): Date => new Date(T0 - min * 60_000)
      // In insert (id) order: [value, ingest time, device time].
      const rows: Array<[number, Date, Date | null]> = [
        [1, at(0), at(5)],
        [2, at(1), null],
        [3, at(0), at(3)],
        [4, at(0), at(3)],
        [5, at(0), at(10)],
        [6, at(0), at(4)],
      ]
      for (const [value, ts, device] of rows) await exec.run(`INSERT INTO "sensor_readings" ("sensor_id", "value", "timestamp", "device_timestamp") VALUES (?, ?, ?, ?)`, [sensorId, value, ts, device])
      const maxId = Number((await exec.all(`SELECT MAX("id") AS m FROM "sensor_readings" WHERE "sensor_id" = ?`, [sensorId]))[0]?.['m'])
      const sensor = { sensorId, deviceId: dev?.id ?? 0, watermark: null }
      const [w] = await h.db.predictions.pendingWindows([sensor], 4)
      expect(w).toMatchObject({ sensorId, maxReadingId: maxId })
      expect(w?.points.map((p) => p.value)).toEqual([6, 3, 4, 2])
      expect(w?.points.map((p) => p.timeMs)).toEqual([4, 3, 3, 1].map((m) => at(m).getTime()))
      expect(await h.db.predictions.pendingWindows([{ ...sensor, watermark: maxId }], 4)).toEqual([])
    })
  })
}

/** Another open handle on the same database (a second cron run). */
async function openSecond(h: EngineHandle): Promise<Database> {
  if (h.engine === 'sqlite') {
    const { openSqliteDatabase } = await import('../../src/lib/adapters/storage/sqlite/index.js')
    return openSqliteDatabase({ path: `${h.env['INGEST_DATA_DIR']}/ingest.db`, create: false })
  }
  if (h.engine === 'postgres') {
    const { openPostgresDatabase } = await import('../../src/lib/adapters/storage/postgres/index.js')
    return openPostgresDatabase({ url: h.env['DATABASE_URL'] ?? '', max: 4, connectTimeoutMs: 5000, queryTimeoutMs: 20000, statementTimeoutMs: 20000 })
  }
  const { openSqlServerDatabase } = await import('../../src/lib/adapters/storage/sqlserver/index.js')
  const url = process.env['MSSQL_URL'] ?? ''
  const u = new URL(url)
  const config = { url, host: u.hostname, port: Number(u.port || 1433), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password), database: u.pathname.slice(1), encrypt: false, trustServerCertificate: true, useProcedure: false }
  return openSqlServerDatabase(config, { max: 4, connectTimeoutMs: 5000, requestTimeoutMs: 20000 })
}

async function installFailingTrigger(h: EngineHandle, exec: SqlExecutor, sensorId: number): Promise<void> {
  if (h.engine === 'sqlite') {
    await exec.run(`CREATE TRIGGER fail_one BEFORE INSERT ON predictions WHEN NEW.sensor_id = ${sensorId} BEGIN SELECT RAISE(ABORT, 'injected failure'); END`)
  } else if (h.engine === 'postgres') {
    await exec.run(`CREATE FUNCTION fail_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.sensor_id = ${sensorId} THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$`)
    await exec.run(`CREATE TRIGGER fail_one BEFORE INSERT ON predictions FOR EACH ROW EXECUTE FUNCTION fail_one()`)
  } else {
    // An error in a trigger dooms a SQL Server transaction; a CHECK violation only ends its statement.
    await exec.run(`ALTER TABLE dbo.predictions WITH NOCHECK ADD CONSTRAINT fail_one CHECK (sensor_id <> ${sensorId})`)
  }
}

async function dropFailingTrigger(h: EngineHandle, exec: SqlExecutor): Promise<void> {
  if (h.engine === 'sqlserver') return void (await exec.run('ALTER TABLE dbo.predictions DROP CONSTRAINT fail_one'))
  await exec.run(`DROP TRIGGER fail_one${h.engine === 'postgres' ? ' ON predictions' : ''}`)
  if (h.engine === 'postgres') await exec.run('DROP FUNCTION fail_one()')
}
