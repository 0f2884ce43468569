import { isCondition, isSeverity, type SensorRules, type Severity, type ThresholdRule } from '../../../domain/rules/index.js'
import type { EffectWrite, FlushWrite, IngestTx, LatestWrite, ReadingRow, SensorDirectory, SensorInfo, StateWrite } from '../../../ports/ingest-store.js'
import type { Param, Row, SqlExecutor } from './executor.js'
import { timeParam, toBool, toJson, toMsOrNull, toNumber, toNumberOrNull, toStringOrNull, toUuid } from './row.js'

const CHUNK = 500

export function chunks<T>(items: readonly T[], size = CHUNK): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

const marks = (n: number): string => Array.from({ length: n }, () => '?').join(', ')

/** Rows selected by `"col" IN (...)`, chunked to stay under every engine's parameter limit. */
export async function selectIn(exec: SqlExecutor, sql: (inList: string) => string, ids: readonly Param[]): Promise<Row[]> {
  const out: Row[] = []
  for (const part of chunks(ids)) out.push(...(await exec.all(sql(marks(part.length)), part)))
  return out
}

const SENSOR_INFO = (where: string) => `SELECT s."id", s."device_id", s."sensor_uuid", s."sensor_type", s."is_active", s."is_deleted", s."deleted_at", d."device_uuid", d."deleted_at" AS "device_deleted_at"
  FROM "sensors" s JOIN "devices" d ON d."id" = s."device_id" WHERE ${where}`

function toSensorInfo(r: Row): SensorInfo {
  return {
    id: toNumber(r['id']),
    deviceId: toNumber(r['device_id']),
    deviceUuid: toUuid(r['device_uuid']),
    sensorUuid: toUuid(r['sensor_uuid']),
    sensorType: toStringOrNull(r['sensor_type']),
    active: toBool(r['is_active']) && !toBool(r['is_deleted']) && r['deleted_at'] == null && r['device_deleted_at'] == null,
  }
}

/** The sensor directory over any engine (one query per lookup batch). */
export function createSqlSensorDirectory(exec: SqlExecutor): SensorDirectory {
  return {
    async findByUuids(pairs) {
      if (pairs.length === 0) return []
      const out: SensorInfo[] = []
      for (const part of chunks(pairs, 200)) {
        const where = part.map(() => '(d."device_uuid" = ? AND s."sensor_uuid" = ?)').join(' OR ')
        const rows = await exec.all(SENSOR_INFO(where), part.flatMap((p) => [p.deviceUuid, p.sensorUuid]))
        out.push(...rows.map(toSensorInfo))
      }
      return out
    },
    async findByIds(ids) {
      if (ids.length === 0) return []
      return (await selectIn(exec, (list) => SENSOR_INFO(`s."id" IN (${list})`), ids)).map(toSensorInfo)
    },
  }
}

function severityOf(v: unknown): Severity {
  return isSeverity(v) ? v : 'warning'
}

/** Active thresholds, delta rule and warm-up settings of many sensors in three queries. */
export async function loadRulesSql(exec: SqlExecutor, ids: readonly number[]): Promise<Map<number, SensorRules>> {
  const rules = new Map<number, SensorRules>()
  if (ids.length === 0) return rules
  const t = exec.dialect.bool(true)
  for (const r of await selectIn(exec, (l) => `SELECT "id", "device_id", "sensor_type", "min_readings_for_normal", "resolve_after_readings" FROM "sensors" WHERE "id" IN (${l})`, ids)) {
    const id = toNumber(r['id'])
    rules.set(id, {
      sensorId: id,
      deviceId: toNumber(r['device_id']),
      sensorType: toStringOrNull(r['sensor_type']),
      minReadingsForNormal: toNumberOrNull(r['min_readings_for_normal']) ?? 10,
      resolveAfterReadings: toNumberOrNull(r['resolve_after_readings']) ?? 3,
      thresholds: [],
      delta: null,
    })
  }
  const thresholds = await selectIn(
    exec,
    (l) => `SELECT "id", "sensor_id", "name", "condition_type", "threshold_value_min", "threshold_value_max", "severity", "consecutive_readings" FROM "alert_thresholds" WHERE "is_active" = ${t} AND "sensor_id" IN (${l}) ORDER BY "id"`,
    ids,
  )
  for (const r of thresholds) {
    const sensor = rules.get(toNumber(r['sensor_id']))
    const condition = r['condition_type']
    if (!sensor || !isCondition(condition)) continue
    const rule: ThresholdRule = {
      id: toNumber(r['id']),
      name: toStringOrNull(r['name']),
      condition,
      min: toNumberOrNull(r['threshold_value_min']),
      max: toNumberOrNull(r['threshold_value_max']),
      severity: severityOf(r['severity']),
      consecutiveReadings: toNumberOrNull(r['consecutive_readings']) ?? 1,
    }
    ;(sensor.thresholds as ThresholdRule[]).push(rule)
  }
  const deltas = await selectIn(
    exec,
    (l) => `SELECT "id", "sensor_id", "abs_delta", "rel_delta", "abs_slope", "rel_slope", "severity", "cooldown_sec", "min_delta_abs", "min_readings", "max_gap_sec" FROM "delta_thresholds" WHERE "is_active" = ${t} AND "sensor_id" IN (${l}) ORDER BY "id"`,
    ids,
  )
  for (const r of deltas) {
    const sensor = rules.get(toNumber(r['sensor_id']))
    if (!sensor || sensor.delta) continue
    sensor.delta = {
      id: toNumber(r['id']),
      absDelta: toNumberOrNull(r['abs_delta']),
      relDelta: toNumberOrNull(r['rel_delta']),
      absSlope: toNumberOrNull(r['abs_slope']),
      relSlope: toNumberOrNull(r['rel_slope']),
      severity: severityOf(r['severity']),
      cooldownSec: toNumberOrNull(r['cooldown_sec']) ?? 300,
      minDeltaAbs: toNumberOrNull(r['min_delta_abs']),
      minReadings: toNumberOrNull(r['min_readings']) ?? 5,
      maxGapSec: toNumberOrNull(r['max_gap_sec']) ?? 600,
    }
  }
  return rules
}

/** Times as parameters keep their microseconds (see timeParam). */
const date = (ms: number): Date => timeParam(ms)

async function activeId(tx: SqlExecutor, table: 'alerts' | 'ml_events', sensorId: number): Promise<number | null> {
  const extra = table === 'ml_events' ? ` AND "event_code" = 'DELTA_SPIKE'` : ''
  const rows = await tx.all(`SELECT "id" FROM "${table}" WHERE "sensor_id" = ? AND "status" = 'active'${extra}`, [sensorId])
  return rows[0] ? toNumber(rows[0]['id']) : null
}

/**
 * Writes the rules engine's effects: one active alert per sensor and one active DELTA_SPIKE event
 * (the unique partial indexes are the backstop), notifications pointing at them. Idempotent against
 * drift: an "update" with no active row opens one, an "open" with one active updates it.
 */
export async function applyEffectsSql(tx: SqlExecutor, effects: readonly EffectWrite[]): Promise<number[]> {
  const opened: number[] = []
  for (const { sensorId, deviceId, effect } of effects) {
    switch (effect.kind) {
      case 'open_alert':
      case 'update_alert': {
        const id = await activeId(tx, 'alerts', sensorId)
        if (id === null) {
          opened.push(
            await tx.insert('alerts', { threshold_id: effect.thresholdId, sensor_id: sensorId, device_id: deviceId, severity: effect.severity, status: 'active', triggered_value: effect.value, triggered_at: date(effect.time) }),
          )
        } else {
          await tx.run('UPDATE "alerts" SET "threshold_id" = ?, "severity" = ?, "triggered_value" = ?, "triggered_at" = ? WHERE "id" = ?', [effect.thresholdId, effect.severity, effect.value, date(effect.time), id])
        }
        break
      }
      case 'resolve_alert':
        await tx.run(`UPDATE "alerts" SET "status" = 'resolved', "resolved_at" = ? WHERE "sensor_id" = ? AND "status" = 'active'`, [date(effect.time), sensorId])
        break
      case 'upsert_delta_spike': {
        const id = await activeId(tx, 'ml_events', sensorId)
        const payload = JSON.stringify(effect.payload)
        // The engine's words (reference §6.8), never a second copy of the rule here; ml_events.message is (n)varchar(1000).
        const title = effect.title.slice(0, 255)
        const message = effect.message.slice(0, 1000)
        if (id === null) {
          await tx.insert('ml_events', { device_id: deviceId, sensor_id: sensorId, event_type: effect.severity, event_code: 'DELTA_SPIKE', title, message, status: 'active', created_at: date(effect.time), payload })
        } else {
          await tx.run('UPDATE "ml_events" SET "event_type" = ?, "title" = ?, "message" = ?, "created_at" = ?, "payload" = ? WHERE "id" = ?', [effect.severity, title, message, date(effect.time), payload, id])
        }
        break
      }
      case 'resolve_delta_spike':
        await tx.run(`UPDATE "ml_events" SET "status" = 'resolved', "resolved_at" = ? WHERE "sensor_id" = ? AND "status" = 'active' AND "event_code" = 'DELTA_SPIKE'`, [date(effect.time), sensorId])
        break
      case 'notify': {
        const sourceId = await activeId(tx, effect.source === 'alert' ? 'alerts' : 'ml_events', sensorId)
        if (sourceId === null) break
        await tx.insert('alert_notifications', {
          source: effect.source,
          source_event_id: sourceId,
          severity: effect.severity,
          title: effect.title.slice(0, 255),
          message: effect.message.slice(0, 2000),
          is_read: false,
          created_at: date(effect.time),
          sensor_id: sensorId,
          device_id: deviceId,
          triggered_value: effect.value,
          event_type: effect.source === 'alert' ? 'alert' : 'DELTA_SPIKE',
          snapshot_data: JSON.stringify({ sensor_id: sensorId, value: effect.value, severity: effect.severity }),
        })
        break
      }
      case 'state_change':
        break // mirrored by saveStates
    }
  }
  return opened
}

/** Inserts one flush's readings (a duplicate key ignored), returns how many were stored. */
export type InsertReadings = (rows: readonly ReadingRow[]) => Promise<number>

/** Row-by-row insert over any engine (the embedded engine passes its prepared statement instead). */
function insertRowByRow(tx: SqlExecutor): InsertReadings {
  return async (rows) => {
    let n = 0
    for (const r of rows) {
      n += await tx.run(
        'INSERT INTO "sensor_readings" ("sensor_id", "value", "timestamp", "device_timestamp", "dedup_key", "sequence", "classification", "reason_codes", "transport") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        [r.sensorId, r.value, date(r.ingestTime), r.deviceTime === null ? null : date(r.deviceTime), r.dedupKey, r.sequence, r.classification, r.reasons, r.transport],
      )
    }
    return n
  }
}

async function moveLatestRowByRow(tx: SqlExecutor, rows: readonly LatestWrite[]): Promise<void> {
  for (const r of rows) {
    const existing = await tx.all('SELECT "latest_timestamp" FROM "sensor_readings_latest" WHERE "sensor_id" = ?', [r.sensorId])
    if (!existing[0]) await tx.run('INSERT INTO "sensor_readings_latest" ("sensor_id", "latest_value", "latest_timestamp") VALUES (?, ?, ?)', [r.sensorId, r.value, date(r.time)])
    else if ((toMsOrNull(existing[0]['latest_timestamp']) ?? 0) <= r.time)
      await tx.run('UPDATE "sensor_readings_latest" SET "latest_value" = ?, "latest_timestamp" = ? WHERE "sensor_id" = ?', [r.value, date(r.time), r.sensorId])
  }
}

async function saveStatesRowByRow(tx: SqlExecutor, states: readonly StateWrite[]): Promise<void> {
  for (const s of states) {
    await tx.run(`UPDATE "sensor_rule_state" SET "state" = ?, "updated_at" = ${tx.dialect.now} WHERE "sensor_id" = ?`, [s.state, s.sensorId])
    if (s.changed)
      await tx.run('UPDATE "sensors" SET "operational_state" = ?, "valid_readings_count" = ?, "state_changed_at" = ? WHERE "id" = ?', [s.operationalState, s.validReadingsCount, s.stateChangedAt === null ? null : date(s.stateChangedAt), s.sensorId])
  }
}

/** Which (sensor, dedup key) pairs are stored, with OR-ed pairs chunked under every engine's parameter limit. */
async function existingKeysOrChunks(tx: SqlExecutor, pairs: ReadonlyArray<{ sensorId: number; dedupKey: string }>): Promise<Set<string>> {
  const found = new Set<string>()
  for (const part of chunks(pairs, 300)) {
    const where = part.map(() => '("sensor_id" = ? AND "dedup_key" = ?)').join(' OR ')
    const rows = await tx.all(`SELECT "sensor_id", "dedup_key" FROM "sensor_readings" WHERE ${where}`, part.flatMap((p) => [p.sensorId, p.dedupKey]))
    for (const r of rows) found.add(`${toNumber(r['sensor_id'])}:${String(r['dedup_key'])}`)
  }
  return found
}

/**
 * The IngestTx over any engine with portable SQL, statement by statement (the embedded engine: every
 * statement is a local call). `insert` replaces the row-by-row insert; `existing` the key lookup.
 */
export function createSqlIngestTx(tx: SqlExecutor, parts: { insert?: InsertReadings; existing?: IngestTx['existingDedupKeys'] } = {}): IngestTx {
  const insert = parts.insert ?? insertRowByRow(tx)
  return {
    async lockSensors(ids) {
      const sorted = [...ids].sort((a, b) => a - b)
      const out = new Map<number, unknown>()
      for (const id of sorted) {
        const rows = await tx.all('SELECT "state" FROM "sensor_rule_state" WHERE "sensor_id" = ?', [id])
        if (rows[0]) out.set(id, toJson(rows[0]['state']))
        else await tx.run('INSERT INTO "sensor_rule_state" ("sensor_id", "state") VALUES (?, ?)', [id, '{}'])
      }
      return out
    },
    loadRules: (ids) => loadRulesSql(tx, ids),
    existingDedupKeys: parts.existing ?? ((pairs) => existingKeysOrChunks(tx, pairs)),
    async write(flush: FlushWrite) {
      await insert(flush.rows)
      const openedAlerts = flush.effects.length > 0 ? await applyEffectsSql(tx, flush.effects) : []
      await moveLatestRowByRow(tx, flush.latest)
      await saveStatesRowByRow(tx, flush.states)
      return { openedAlerts }
    },
  }
}
