import { MODEL_SPECS, PRED_THRESHOLD_BREACH, type PredictionEngine, type WindowPoint } from '../../../domain/ml/index.js'
import { isCondition, isSeverity, type ThresholdRule } from '../../../domain/rules/types.js'
import type { Engine } from '../../../ports/engine.js'
import type { AnomalyToExplain, MlSensor, NewPrediction, PredictionStore, PredictionTx, SensorWindow, Shard, WatermarkClaim } from '../../../ports/prediction-store.js'
import type { Param, SqlExecutor } from './executor.js'
import { chunks, selectIn } from './ingest-tx.js'
import { timeParam, toMsOrNull, toNumber, toNumberOrNull, toStringOrNull } from './row.js'

/**
 * The set-based statements that differ by engine: a list of sensors travels as arrays (PostgreSQL
 * unnest), JSON (SQLite json_each, SQL Server OPENJSON), so one statement serves a whole batch.
 */
interface EngineSql {
  /** Params: sensors, window. Rows: sensor_id, max_id, and either id, value, t (a time) per reading or points (bytea, see decodeWindow) per sensor. */
  windows: string
  windowParams(sensors: readonly MlSensor[], window: number): Param[]
  /** Statements (each returning the won sensor_id rows) and their params: [sql, params][]. */
  claim(claims: readonly WatermarkClaim[], at: Date): Array<[string, Param[]]>
  savepoint(name: string): string
  rollbackTo(name: string): string
  release(name: string): string | null
  /** The most parameters one statement takes. */
  maxParams: number
  /** A whole batch of predictions in one statement, where the engine has something better than VALUES lists. */
  insertPredictions?: (rows: readonly Param[][]) => [string, Param[]]
}

const WINDOW_COLUMNS = `COALESCE(r."device_timestamp", r."timestamp")`

const jsonSensors = (sensors: readonly MlSensor[]): string => JSON.stringify(sensors.map((s) => [s.sensorId, s.watermark]))
const jsonClaims = (claims: readonly WatermarkClaim[]): string => JSON.stringify(claims.map((c) => [c.sensorId, c.from, c.to]))

const PREDICTION_COLUMNS = [
  'model_id',
  'sensor_id',
  'device_id',
  'predicted_value',
  'confidence',
  'predicted_at',
  'target_timestamp',
  'horizon_minutes',
  'trend',
  'window_points',
  'is_anomaly',
  'anomaly_score',
  'risk_level',
  'severity',
  'status',
] as const

const PREDICTION_PG_TYPES = ['bigint', 'bigint', 'bigint', 'float8', 'float8', 'timestamptz', 'timestamptz', 'integer', 'text', 'integer', 'integer', 'float8', 'text', 'text', 'text'] as const

const POSTGRES: EngineSql = {
  // MATERIALIZED: the newest id once per sensor (inlined, it runs again for every row). One statement is one
  // snapshot, so the window cannot hold a reading newer than max_id: no id filter, the index scan stops at
  // the window (an index-only scan of idx_sensor_readings_sensor_time_cov, which carries value and both times).
  // One row per sensor, the window as one bytea of (value, epoch ms) float8 pairs, newest first: no number
  // ever goes through text (float8 -> text in PostgreSQL and text -> number in Node were most of the cost).
  // The pairs come in the subquery's order (a plain aggregate over an ordered, limited scan); an ORDER BY
  // inside string_agg would sort every window again. The reader checks the order (see decodeWindow).
  windows: `WITH m AS MATERIALIZED (
  SELECT s.sensor_id, s.wm, (SELECT max(x."id") FROM "sensor_readings" x WHERE x."sensor_id" = s.sensor_id) AS max_id
  FROM unnest(?::bigint[], ?::bigint[]) AS s(sensor_id, wm))
SELECT m.sensor_id, m.max_id, w.points
FROM m CROSS JOIN LATERAL (
  SELECT string_agg(float8send(z."value") || float8send(date_part('epoch', z.t) * 1000), ''::bytea) AS points FROM (
    SELECT r."value", ${WINDOW_COLUMNS} AS t FROM "sensor_readings" r
    WHERE r."sensor_id" = m.sensor_id ORDER BY ${WINDOW_COLUMNS} DESC, r."id" DESC LIMIT ?) z) w
WHERE m.max_id IS NOT NULL AND (m.wm IS NULL OR m.max_id > m.wm)`,
  windowParams: (sensors, window) => [sensors.map((s) => s.sensorId), sensors.map((s) => s.watermark), window],
  // One statement: the inserts of missing rows and the compare-and-set updates see the same snapshot;
  // a concurrent run's insert or update makes ours wait, then do nothing (READ COMMITTED re-check).
  claim: (claims, at) => [
    [
      `WITH c AS (SELECT * FROM unnest(?::bigint[], ?::bigint[], ?::bigint[]) AS c(sensor_id, from_id, to_id) ORDER BY sensor_id),
ins AS (INSERT INTO "ml_watermarks" ("sensor_id", "last_reading_id", "last_processed_at")
  SELECT sensor_id, to_id, ? FROM c WHERE from_id IS NULL ORDER BY sensor_id ON CONFLICT ("sensor_id") DO NOTHING RETURNING "sensor_id"),
upd AS (UPDATE "ml_watermarks" w SET "last_reading_id" = c.to_id, "last_processed_at" = ?
  FROM c WHERE w."sensor_id" = c.sensor_id AND w."last_reading_id" IS NOT DISTINCT FROM c.from_id RETURNING w."sensor_id")
SELECT "sensor_id" FROM ins UNION ALL SELECT "sensor_id" FROM upd`,
      [claims.map((c) => c.sensorId), claims.map((c) => c.from), claims.map((c) => c.to), at, at],
    ],
  ],
  savepoint: (n) => `SAVEPOINT ${n}`,
  rollbackTo: (n) => `ROLLBACK TO SAVEPOINT ${n}`,
  release: (n) => `RELEASE SAVEPOINT ${n}`,
  maxParams: 60_000,
  // One array per column: 15 parameters whatever the batch size (a VALUES list of 7 500 costs more to parse and plan).
  insertPredictions: (rows) => [
    `INSERT INTO "predictions" (${PREDICTION_COLUMNS.map((c) => `"${c}"`).join(', ')}) SELECT * FROM unnest(${PREDICTION_PG_TYPES.map((t) => `?::${t}[]`).join(', ')})`,
    PREDICTION_PG_TYPES.map((_, i) => rows.map((r) => r[i] ?? null) as Param),
  ],
}

const SQLITE: EngineSql = {
  windows: `WITH s AS (SELECT json_extract(j.value, '$[0]') AS sensor_id, json_extract(j.value, '$[1]') AS wm FROM json_each(?) j),
m AS (SELECT s.sensor_id, s.wm, (SELECT max(x."id") FROM "sensor_readings" x WHERE x."sensor_id" = s.sensor_id) AS max_id FROM s)
SELECT m.sensor_id, m.max_id, r."id", r."value", ${WINDOW_COLUMNS} AS t
FROM m JOIN "sensor_readings" r ON r."id" IN (
  SELECT x."id" FROM "sensor_readings" x WHERE x."sensor_id" = m.sensor_id AND x."id" <= m.max_id
  ORDER BY COALESCE(x."device_timestamp", x."timestamp") DESC, x."id" DESC LIMIT ?)
WHERE m.max_id IS NOT NULL AND (m.wm IS NULL OR m.max_id > m.wm)`,
  windowParams: (sensors, window) => [jsonSensors(sensors), window],
  // BEGIN IMMEDIATE already serialises writers; the compare-and-set keeps a second run from repeating the first's work.
  claim: (claims, at) => {
    const c = `SELECT json_extract(j.value, '$[0]') AS sensor_id, json_extract(j.value, '$[1]') AS from_id, json_extract(j.value, '$[2]') AS to_id FROM json_each(?) j`
    return [
      [
        `UPDATE "ml_watermarks" SET "last_reading_id" = c.to_id, "last_processed_at" = ? FROM (${c}) AS c
WHERE "ml_watermarks"."sensor_id" = c.sensor_id AND "ml_watermarks"."last_reading_id" IS c.from_id RETURNING "ml_watermarks"."sensor_id"`,
        [at, jsonClaims(claims)],
      ],
      [
        `INSERT INTO "ml_watermarks" ("sensor_id", "last_reading_id", "last_processed_at") SELECT c.sensor_id, c.to_id, ? FROM (${c}) AS c
WHERE c.from_id IS NULL ON CONFLICT ("sensor_id") DO NOTHING RETURNING "sensor_id"`,
        [at, jsonClaims(claims)],
      ],
    ]
  },
  savepoint: (n) => `SAVEPOINT ${n}`,
  rollbackTo: (n) => `ROLLBACK TO SAVEPOINT ${n}`,
  release: (n) => `RELEASE SAVEPOINT ${n}`,
  maxParams: 30_000,
}

const SQLSERVER: EngineSql = {
  windows: `WITH m AS (
  SELECT s.sensor_id, s.wm, (SELECT MAX(x."id") FROM "sensor_readings" x WHERE x."sensor_id" = s.sensor_id) AS max_id
  FROM OPENJSON(?) WITH (sensor_id bigint '$[0]', wm bigint '$[1]') AS s)
SELECT m.sensor_id, m.max_id, w."id", w."value", w.t
FROM m CROSS APPLY (
  SELECT TOP (?) r."id", CAST(r."value" AS float) AS "value", ${WINDOW_COLUMNS} AS t FROM "sensor_readings" r
  WHERE r."sensor_id" = m.sensor_id AND r."id" <= m.max_id ORDER BY ${WINDOW_COLUMNS} DESC, r."id" DESC) w
WHERE m.max_id IS NOT NULL AND (m.wm IS NULL OR m.max_id > m.wm)`,
  windowParams: (sensors, window) => [jsonSensors(sensors), window],
  // UPDLOCK on the rows and HOLDLOCK on the missing keys: a concurrent run waits, then finds the watermark moved.
  claim: (claims, at) => [
    [
      `DECLARE @c TABLE (sensor_id bigint PRIMARY KEY, from_id bigint NULL, to_id bigint NOT NULL);
INSERT INTO @c (sensor_id, from_id, to_id) SELECT sensor_id, from_id, to_id FROM OPENJSON(?) WITH (sensor_id bigint '$[0]', from_id bigint '$[1]', to_id bigint '$[2]');
DECLARE @won TABLE (sensor_id bigint NOT NULL);
UPDATE w SET "last_reading_id" = c.to_id, "last_processed_at" = ? OUTPUT inserted."sensor_id" INTO @won
FROM "ml_watermarks" w WITH (UPDLOCK) JOIN @c c ON c.sensor_id = w."sensor_id"
WHERE w."last_reading_id" = c.from_id OR (w."last_reading_id" IS NULL AND c.from_id IS NULL);
INSERT INTO "ml_watermarks" ("sensor_id", "last_reading_id", "last_processed_at") OUTPUT inserted."sensor_id" INTO @won
SELECT c.sensor_id, c.to_id, ? FROM @c c WHERE c.from_id IS NULL AND NOT EXISTS (SELECT 1 FROM "ml_watermarks" w WITH (UPDLOCK, HOLDLOCK) WHERE w."sensor_id" = c.sensor_id);
SELECT sensor_id FROM @won;`,
      [jsonClaims(claims), at, at],
    ],
  ],
  savepoint: (n) => `SAVE TRANSACTION ${n}`,
  rollbackTo: (n) => `ROLLBACK TRANSACTION ${n}`,
  release: () => null,
  maxParams: 2_000,
}

export const PREDICTION_SQL: Readonly<Record<Engine, EngineSql>> = { postgres: POSTGRES, sqlite: SQLITE, sqlserver: SQLSERVER }


function predictionParams(p: NewPrediction): Param[] {
  return [
    p.modelId,
    p.sensorId,
    p.deviceId,
    p.predictedValue,
    p.confidence,
    timeParam(p.predictedAt),
    timeParam(p.targetTimestamp),
    p.horizonMinutes,
    p.trend,
    p.windowPoints,
    p.isAnomaly ? 1 : 0,
    p.anomalyScore,
    p.riskLevel,
    p.severity,
    p.status,
  ]
}

/** `INSERT INTO t (cols) VALUES (...), (...)` in statements under the engine's parameter limit. */
async function insertMany(exec: SqlExecutor, table: string, columns: readonly string[], rows: readonly Param[][], maxParams: number): Promise<void> {
  const perStatement = Math.max(1, Math.floor(maxParams / columns.length))
  const tuple = `(${columns.map(() => '?').join(', ')})`
  for (const part of chunks(rows, perStatement)) {
    await exec.run(`INSERT INTO "${table}" (${columns.map((c) => `"${c}"`).join(', ')}) VALUES ${part.map(() => tuple).join(', ')}`, part.flat())
  }
}

const EXPLAIN_COLUMNS = `p."id", p."sensor_id", p."device_id", p."predicted_value", p."confidence", p."anomaly_score", p."trend", p."target_timestamp", s."sensor_type"`
const NO_EXPLANATION = `(p."explanation" IS NULL OR LTRIM(RTRIM(p."explanation")) = '')`

/**
 * A PostgreSQL window: (value, epoch ms) float8 pairs, big-endian, newest first -> points oldest first.
 * The order comes from the query's index scan; a window out of time order would mean the aggregate saw
 * its input in another order, so that is an error, never a silently different prediction.
 */
export function decodeWindow(packed: Uint8Array, sensorId: number): WindowPoint[] {
  if (packed.byteLength % 16 !== 0) throw new Error(`sensor ${sensorId}: a window of ${packed.byteLength} bytes is not (value, time) pairs`)
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength)
  const n = packed.byteLength / 16
  const points = new Array<WindowPoint>(n)
  let later = Number.POSITIVE_INFINITY
  for (let i = 0; i < n; i++) {
    const timeMs = view.getFloat64(i * 16 + 8)
    if (timeMs > later) throw new Error(`sensor ${sensorId}: the window came back out of time order`)
    later = timeMs
    points[n - 1 - i] = { value: view.getFloat64(i * 16), timeMs }
  }
  return points
}

let savepointSeq = 0

function createTx(tx: SqlExecutor, sql: EngineSql): PredictionTx {
  return {
    async savepoint(fn) {
      const name = `ml_sp_${++savepointSeq}`
      await tx.run(sql.savepoint(name))
      try {
        const out = await fn()
        const release = sql.release(name)
        if (release) await tx.run(release)
        return out
      } catch (err) {
        // A failed rollback (the connection is gone) leaves the transaction dead: the original error says why.
        await tx.run(sql.rollbackTo(name)).catch(() => undefined)
        throw err
      }
    },
    async claim(claims, at) {
      const won = new Set<number>()
      if (claims.length === 0) return won
      // Sorted: concurrent runs lock the same rows in the same order.
      const sorted = [...claims].sort((a, b) => a.sensorId - b.sensorId)
      for (const part of chunks(sorted, 1000)) {
        for (const [text, params] of sql.claim(part, timeParam(at))) for (const r of await tx.all(text, params)) won.add(toNumber(r['sensor_id']))
      }
      return won
    },
    async models(sensorIds, engine: PredictionEngine, at) {
      const spec = MODEL_SPECS[engine]
      const t = tx.dialect.bool(true)
      const find = async (ids: readonly number[]): Promise<Map<number, number>> => {
        const out = new Map<number, number>()
        const rows = await selectIn(tx, (l) => `SELECT "id", "sensor_id" FROM "ml_models" WHERE "is_active" = ${t} AND "model_type" = '${spec.modelType}' AND "sensor_id" IN (${l}) ORDER BY "sensor_id", "trained_at" DESC, "id" DESC`, ids)
        for (const r of rows) {
          const sensorId = toNumber(r['sensor_id'])
          if (!out.has(sensorId)) out.set(sensorId, toNumber(r['id']))
        }
        return out
      }
      const found = await find(sensorIds)
      const missing = sensorIds.filter((id) => !found.has(id))
      if (missing.length === 0) return found
      await insertMany(
        tx,
        'ml_models',
        ['sensor_id', 'model_name', 'model_type', 'version', 'is_active', 'trained_at'],
        missing.map((id) => [id, spec.modelName, spec.modelType, spec.version, true, timeParam(at)]),
        sql.maxParams,
      )
      for (const [k, v] of await find(missing)) found.set(k, v)
      return found
    },
    async insertPredictions(rows, idsFor) {
      if (sql.insertPredictions && rows.length > 0) await tx.run(...sql.insertPredictions(rows.map(predictionParams)))
      else await insertMany(tx, 'predictions', PREDICTION_COLUMNS, rows.map(predictionParams), sql.maxParams)
      const ids = new Map<number, number>()
      const wanted = rows.filter((r) => idsFor.has(r.sensorId))
      // The claim serialises runs per sensor, so the newest row of a claimed sensor at this time is ours.
      for (const at of new Set(wanted.map((r) => r.predictedAt))) {
        const sensors = wanted.filter((r) => r.predictedAt === at).map((r) => r.sensorId)
        for (const part of chunks(sensors)) {
          const found = await tx.all(`SELECT "sensor_id", MAX("id") AS "id" FROM "predictions" WHERE "predicted_at" = ? AND "sensor_id" IN (${part.map(() => '?').join(', ')}) GROUP BY "sensor_id"`, [timeParam(at), ...part])
          for (const r of found) ids.set(toNumber(r['sensor_id']), toNumber(r['id']))
        }
      }
      return ids
    },
    async recentBreaches(sensorIds, since) {
      const out = new Set<number>()
      for (const part of chunks(sensorIds)) {
        const rows = await tx.all(
          `SELECT DISTINCT "sensor_id" FROM "ml_events" WHERE "event_code" = '${PRED_THRESHOLD_BREACH}' AND "status" IN ('active', 'acknowledged') AND "created_at" >= ? AND "sensor_id" IN (${part.map(() => '?').join(', ')})`,
          [timeParam(since), ...part],
        )
        for (const r of rows) out.add(toNumber(r['sensor_id']))
      }
      return out
    },
    async insertBreaches(events) {
      if (events.length === 0) return
      const eventRows = events.map((e): Param[] => [e.deviceId, e.sensorId, e.predictionId, e.breach.eventType, PRED_THRESHOLD_BREACH, e.breach.title.slice(0, 255), e.breach.message.slice(0, 1000), 'active', timeParam(e.at), JSON.stringify(e.breach.payload)])
      await insertMany(tx, 'ml_events', ['device_id', 'sensor_id', 'prediction_id', 'event_type', 'event_code', 'title', 'message', 'status', 'created_at', 'payload'], eventRows, sql.maxParams)
      // The new events' ids, by prediction (one event per prediction).
      const eventIds = new Map<number, number>()
      // By (sensor, code, time): the index of ml_events; prediction_id tells ours apart.
      for (const part of chunks(events)) {
        const rows = await tx.all(
          `SELECT "id", "prediction_id" FROM "ml_events" WHERE "event_code" = '${PRED_THRESHOLD_BREACH}' AND "created_at" = ? AND "sensor_id" IN (${part.map(() => '?').join(', ')})`,
          [timeParam(part[0]?.at ?? 0), ...part.map((e) => e.sensorId)],
        )
        for (const r of rows) if (r['prediction_id'] != null) eventIds.set(toNumber(r['prediction_id']), toNumber(r['id']))
      }
      const notes = events.map((e): Param[] => [
        'ml_event',
        eventIds.get(e.predictionId) ?? null,
        e.breach.severity,
        e.breach.title.slice(0, 255),
        e.breach.message.slice(0, 2000),
        false,
        timeParam(e.at),
        e.sensorId,
        e.deviceId,
        e.predictedValue,
        PRED_THRESHOLD_BREACH,
        JSON.stringify({ sensor_id: e.sensorId, prediction_id: e.predictionId, predicted_value: e.predictedValue, threshold_id: e.breach.threshold.id, severity: e.breach.severity }),
      ])
      await insertMany(tx, 'alert_notifications', ['source', 'source_event_id', 'severity', 'title', 'message', 'is_read', 'created_at', 'sensor_id', 'device_id', 'triggered_value', 'event_type', 'snapshot_data'], notes, sql.maxParams)
    },
  }
}

/** The ML jobs' store over any engine's SqlExecutor (DESIGN §11). */
export function createSqlPredictionStore(exec: SqlExecutor): PredictionStore {
  const sql = PREDICTION_SQL[exec.engine]
  return {
    explanationMaxChars: exec.engine === 'sqlserver' ? 1000 : null,
    async activeSensors(shard: Shard | null) {
      const t = exec.dialect.bool(true)
      const f = exec.dialect.bool(false)
      const where = shard ? ` AND s."id" % ? = ?` : ''
      const rows = await exec.all(
        `SELECT s."id", s."device_id", w."last_reading_id" FROM "sensors" s JOIN "devices" d ON d."id" = s."device_id"
LEFT JOIN "ml_watermarks" w ON w."sensor_id" = s."id"
WHERE s."is_active" = ${t} AND COALESCE(s."is_deleted", ${f}) = ${f} AND s."deleted_at" IS NULL AND d."deleted_at" IS NULL${where} ORDER BY s."id"`,
        shard ? [shard.count, shard.index] : [],
      )
      return rows.map((r) => ({ sensorId: toNumber(r['id']), deviceId: toNumber(r['device_id']), watermark: toNumberOrNull(r['last_reading_id']) }))
    },
    async pendingWindows(sensors, window) {
      if (sensors.length === 0) return []
      const bySensor = new Map(sensors.map((s) => [s.sensorId, s]))
      const out = new Map<number, { window: SensorWindow; rows: Array<{ value: number; timeMs: number; id: number }> }>()
      for (const r of await exec.all(sql.windows, sql.windowParams(sensors, window))) {
        const sensorId = toNumber(r['sensor_id'])
        const s = bySensor.get(sensorId)
        if (!s) continue
        let entry = out.get(sensorId)
        if (!entry) {
          entry = { window: { sensorId, deviceId: s.deviceId, watermark: s.watermark, maxReadingId: toNumber(r['max_id']), points: [] }, rows: [] }
          out.set(sensorId, entry)
        }
        const packed = r['points']
        if (packed instanceof Uint8Array) {
          // Aggregated (PostgreSQL): the whole window, newest first, already in the final order.
          entry.window.points = decodeWindow(packed, sensorId)
          continue
        }
        const timeMs = toMsOrNull(r['t'])
        if (timeMs !== null) entry.rows.push({ value: toNumber(r['value']), timeMs, id: toNumber(r['id']) })
      }
      // Oldest first, ties by reading id (the per-row engines return rows in no order).
      for (const { window: w, rows } of out.values()) if (rows.length > 0) w.points = rows.sort((a, b) => a.timeMs - b.timeMs || a.id - b.id).map(({ value, timeMs }) => ({ value, timeMs }))
      return [...out.values()].map((e) => e.window)
    },
    async thresholds(sensorIds) {
      const out = new Map<number, ThresholdRule[]>()
      const t = exec.dialect.bool(true)
      const rows = await selectIn(exec, (l) => `SELECT "id", "sensor_id", "name", "condition_type", "threshold_value_min", "threshold_value_max", "severity", "consecutive_readings" FROM "alert_thresholds" WHERE "is_active" = ${t} AND "sensor_id" IN (${l}) ORDER BY "id"`, sensorIds)
      for (const r of rows) {
        const condition = r['condition_type']
        if (!isCondition(condition)) continue
        const sensorId = toNumber(r['sensor_id'])
        const list = out.get(sensorId) ?? []
        list.push({
          id: toNumber(r['id']),
          name: toStringOrNull(r['name']),
          condition,
          min: toNumberOrNull(r['threshold_value_min']),
          max: toNumberOrNull(r['threshold_value_max']),
          severity: isSeverity(r['severity']) ? r['severity'] : 'warning',
          consecutiveReadings: toNumberOrNull(r['consecutive_readings']) ?? 1,
        })
        out.set(sensorId, list)
      }
      return out
    },
    async sensorTypes(sensorIds) {
      const rows = await selectIn(exec, (l) => `SELECT "id", "sensor_type" FROM "sensors" WHERE "id" IN (${l})`, sensorIds)
      return new Map(rows.map((r) => [toNumber(r['id']), toStringOrNull(r['sensor_type'])]))
    },
    withTransaction: (fn) => exec.transaction((tx) => fn(createTx(tx, sql))),
    async anomaliesToExplain({ threshold, limit }) {
      const rows = await exec.all(
        `SELECT ${EXPLAIN_COLUMNS} FROM "predictions" p LEFT JOIN "sensors" s ON s."id" = p."sensor_id"
WHERE p."is_anomaly" = 1 AND p."anomaly_score" >= ? AND ${NO_EXPLANATION} ORDER BY p."target_timestamp" DESC, p."id" DESC ${exec.dialect.limit(limit)}`,
        [threshold],
      )
      return rows.map(
        (r): AnomalyToExplain => ({
          id: toNumber(r['id']),
          sensorId: toNumber(r['sensor_id']),
          deviceId: toNumber(r['device_id']),
          predictedValue: toNumber(r['predicted_value']),
          confidence: toNumber(r['confidence']),
          anomalyScore: toNumber(r['anomaly_score']),
          trend: toStringOrNull(r['trend']),
          targetTimestamp: toMsOrNull(r['target_timestamp']),
          sensorType: toStringOrNull(r['sensor_type']),
        }),
      )
    },
    async saveExplanation(predictionId, json) {
      const changed = await exec.run(`UPDATE "predictions" SET "explanation" = ? WHERE "id" = ? AND ${NO_EXPLANATION.replaceAll('p.', '')}`, [json, predictionId])
      return changed > 0
    },
  }
}
