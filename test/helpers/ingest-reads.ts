import type { SqlReader } from './engines.js'

/**
 * Reads the IoT tables back for the ingest-store contract suite, in one normalised shape on every
 * engine: ids and values as numbers, times as epoch milliseconds, JSON columns parsed. Raw SQL through
 * the engine's executor (test code; `?` placeholders and double-quoted names work on all three).
 * The normalisation is strict: a value of an unexpected type fails the test instead of being coerced.
 */

/** A 64-bit id column: a number, or the decimal text/bigint a driver returns for bigint (mssql). */
export function idOf(v: unknown): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v
  if (typeof v === 'bigint' || (typeof v === 'string' && /^-?\d+$/.test(v))) {
    const n = Number(v)
    if (Number.isSafeInteger(n)) return n
  }
  throw new Error(`expected an integer id, got ${typeof v} ${String(v)}`)
}

export function idOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : idOf(v)
}

/** A double (or decimal(15,5) on SQL Server, which mssql returns as a number). */
export function numberOf(v: unknown): number {
  if (typeof v === 'number') return v
  throw new Error(`expected a number, got ${typeof v} ${String(v)}`)
}

/** A time column: a Date (pg, mssql) or ISO-8601 text (SQLite; a zone-less one is UTC). */
export function msOf(v: unknown): number {
  if (v instanceof Date) return v.getTime()
  if (typeof v === 'string') {
    const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(v) ? v : `${v.replace(' ', 'T')}Z`)
    if (!Number.isNaN(ms)) return ms
  }
  throw new Error(`expected a time, got ${typeof v} ${String(v)}`)
}

export function msOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : msOf(v)
}

/** A JSON column: parsed by the driver (pg jsonb) or text to parse (SQLite, SQL Server nvarchar). */
export function jsonOf(v: unknown): unknown {
  if (v === null || v === undefined) return null
  return typeof v === 'string' ? (JSON.parse(v) as unknown) : v
}

export function textOrNull(v: unknown): string | null {
  if (v === null || v === undefined) return null
  if (typeof v === 'string') return v
  throw new Error(`expected text, got ${typeof v} ${JSON.stringify(v)}`)
}

export interface StoredReading {
  id: number
  value: number
  ingestTime: number
  deviceTime: number | null
  dedupKey: string | null
  sequence: number | null
  classification: string | null
  reasons: unknown
  transport: string | null
}

export async function readingsOf(read: SqlReader, sensorId: number): Promise<StoredReading[]> {
  const rows = await read.all(
    `SELECT "id", "value", "timestamp", "device_timestamp", "dedup_key", "sequence", "classification", "reason_codes", "transport" FROM "sensor_readings" WHERE "sensor_id" = ? ORDER BY "id"`,
    [sensorId],
  )
  return rows.map((r) => ({
    id: idOf(r['id']),
    value: numberOf(r['value']),
    ingestTime: msOf(r['timestamp']),
    deviceTime: msOrNull(r['device_timestamp']),
    dedupKey: textOrNull(r['dedup_key']),
    sequence: idOrNull(r['sequence']),
    classification: textOrNull(r['classification']),
    reasons: jsonOf(r['reason_codes']),
    transport: textOrNull(r['transport']),
  }))
}

export async function countReadings(read: SqlReader, sensorIds: readonly number[]): Promise<number> {
  let n = 0
  // IN lists of at most 500 ids: SQL Server takes at most 2100 parameters per request.
  for (let i = 0; i < sensorIds.length; i += 500) {
    const part = sensorIds.slice(i, i + 500)
    const rows = await read.all(`SELECT COUNT(*) AS "n" FROM "sensor_readings" WHERE "sensor_id" IN (${part.map(() => '?').join(', ')})`, part)
    n += idOf(rows[0]?.['n'])
  }
  return n
}

export interface Latest {
  value: number
  time: number
}

export async function latestOf(read: SqlReader, sensorId: number): Promise<Latest | null> {
  const rows = await read.all(`SELECT "latest_value", "latest_timestamp" FROM "sensor_readings_latest" WHERE "sensor_id" = ?`, [sensorId])
  const r = rows[0]
  return r ? { value: numberOf(r['latest_value']), time: msOf(r['latest_timestamp']) } : null
}

export interface StoredAlert {
  id: number
  thresholdId: number | null
  deviceId: number
  severity: string
  status: string
  triggeredValue: number
  triggeredAt: number
  resolvedAt: number | null
}

export async function alertsOf(read: SqlReader, sensorId: number): Promise<StoredAlert[]> {
  const rows = await read.all(
    `SELECT "id", "threshold_id", "device_id", "severity", "status", "triggered_value", "triggered_at", "resolved_at" FROM "alerts" WHERE "sensor_id" = ? ORDER BY "id"`,
    [sensorId],
  )
  return rows.map((r) => ({
    id: idOf(r['id']),
    thresholdId: idOrNull(r['threshold_id']),
    deviceId: idOf(r['device_id']),
    severity: String(r['severity']),
    status: String(r['status']),
    triggeredValue: numberOf(r['triggered_value']),
    triggeredAt: msOf(r['triggered_at']),
    resolvedAt: msOrNull(r['resolved_at']),
  }))
}

export interface StoredEvent {
  id: number
  deviceId: number
  eventType: string
  eventCode: string
  title: string | null
  message: string | null
  status: string
  createdAt: number
  resolvedAt: number | null
  payload: unknown
}

export async function eventsOf(read: SqlReader, sensorId: number): Promise<StoredEvent[]> {
  const rows = await read.all(
    `SELECT "id", "device_id", "event_type", "event_code", "title", "message", "status", "created_at", "resolved_at", "payload" FROM "ml_events" WHERE "sensor_id" = ? ORDER BY "id"`,
    [sensorId],
  )
  return rows.map((r) => ({
    id: idOf(r['id']),
    deviceId: idOf(r['device_id']),
    eventType: String(r['event_type']),
    eventCode: String(r['event_code']),
    title: textOrNull(r['title']),
    message: textOrNull(r['message']),
    status: String(r['status']),
    createdAt: msOf(r['created_at']),
    resolvedAt: msOrNull(r['resolved_at']),
    payload: jsonOf(r['payload']),
  }))
}

export interface StoredNotification {
  id: number
  source: string
  sourceEventId: number
  severity: string
  title: string
  message: string | null
  deviceId: number | null
  triggeredValue: number | null
  eventType: string | null
  createdAt: number
  snapshot: unknown
}

export async function notificationsOf(read: SqlReader, sensorId: number): Promise<StoredNotification[]> {
  const rows = await read.all(
    `SELECT "id", "source", "source_event_id", "severity", "title", "message", "device_id", "triggered_value", "event_type", "created_at", "snapshot_data" FROM "alert_notifications" WHERE "sensor_id" = ? ORDER BY "id"`,
    [sensorId],
  )
  return rows.map((r) => ({
    id: idOf(r['id']),
    source: String(r['source']),
    sourceEventId: idOf(r['source_event_id']),
    severity: String(r['severity']),
    title: String(r['title']),
    message: textOrNull(r['message']),
    deviceId: idOrNull(r['device_id']),
    triggeredValue: r['triggered_value'] === null ? null : numberOf(r['triggered_value']),
    eventType: textOrNull(r['event_type']),
    createdAt: msOf(r['created_at']),
    snapshot: jsonOf(r['snapshot_data']),
  }))
}

/** The stored `sensor_rule_state.state`, parsed (decode it with the domain codec to compare states). */
export async function ruleStateOf(read: SqlReader, sensorId: number): Promise<unknown> {
  const rows = await read.all(`SELECT "state" FROM "sensor_rule_state" WHERE "sensor_id" = ?`, [sensorId])
  return rows[0] ? jsonOf(rows[0]['state']) : undefined
}

export interface LegacySensorState {
  operationalState: string
  validReadingsCount: number
  stateChangedAt: number | null
}

/** The legacy `sensors` columns the flush mirrors the rule state on. */
export async function sensorStateOf(read: SqlReader, sensorId: number): Promise<LegacySensorState | undefined> {
  const rows = await read.all(`SELECT "operational_state", "valid_readings_count", "state_changed_at" FROM "sensors" WHERE "id" = ?`, [sensorId])
  const r = rows[0]
  return r ? { operationalState: String(r['operational_state']), validReadingsCount: numberOf(r['valid_readings_count']), stateChangedAt: msOrNull(r['state_changed_at']) } : undefined
}
