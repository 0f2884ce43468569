import { type ActiveStreamAlert, type AuditRow, type PointKey, type PointRow, pointKeyString, type SeriesRef, type SeriesStatus, type StreamAlertWrite, type UniversalTx } from '../../../ports/universal-store.js'
import type { Param, Row, SqlExecutor } from './executor.js'
import { chunks } from './ingest-tx.js'
import { timeParam, toJson, toMsOrNull, toNumber, toStringOrNull } from './row.js'

/**
 * The universal write path in SQL every engine that holds it (SQLite, PostgreSQL) runs; the hot
 * statements (insert points, find stored keys, save states) can be replaced by an engine's faster form.
 */
export interface UniversalSqlHooks {
  insertPoints?(tx: SqlExecutor, rows: readonly PointRow[]): Promise<void>
  existingKeys?(tx: SqlExecutor, keys: readonly PointKey[]): Promise<Set<string>>
  saveStates?(tx: SqlExecutor, states: ReadonlyArray<{ seriesId: string; state: string }>): Promise<void>
  insertAudit?(tx: SqlExecutor, rows: readonly AuditRow[]): Promise<void>
  /** Appended to the lock's SELECT (PostgreSQL: `FOR UPDATE`). */
  lockClause: string
}

const marks = (n: number, each: string): string => Array.from({ length: n }, () => each).join(', ')

/** `(domain, source, stream)` matches of many series, chunked under every engine's parameter limit. */
async function bySeries(tx: SqlExecutor, series: readonly SeriesRef[], sql: (where: string) => string): Promise<Row[]> {
  const out: Row[] = []
  for (const part of chunks(series, 300)) {
    const where = part.map(() => '("domain" = ? AND "source_id" = ? AND "stream_id" = ?)').join(' OR ')
    out.push(...(await tx.all(sql(where), part.flatMap((s) => [s.domain, s.sourceId, s.streamId]))))
  }
  return out
}

const seriesIdOf = (r: Row): string => `${String(r['domain'])}:${String(r['source_id'])}:${String(r['stream_id'])}`

function alertOf(r: Row): ActiveStreamAlert {
  return { id: toNumber(r['id']), severity: String(r['severity']), value: toNumber(r['value']), triggeredAt: toMsOrNull(r['triggered_at']) ?? 0 }
}

export async function insertAuditSql(tx: SqlExecutor, rows: readonly AuditRow[]): Promise<void> {
  for (const part of chunks(rows, 60)) {
    const params: Param[] = []
    for (const a of part) params.push(a.seriesId, a.domain, a.sourceId, a.value, a.classification, a.transport, a.credential, a.clientIp, timeParam(a.dataTime), a.status, a.error, a.metadata)
    await tx.run(
      `INSERT INTO "ingestion_audit_log" ("series_id", "domain", "source_id", "value", "classification", "transport", "api_key_hash", "client_ip", "data_timestamp", "status", "error_message", "metadata") VALUES ${marks(part.length, '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')}`,
      params,
    )
  }
}

async function insertPointsSql(tx: SqlExecutor, rows: readonly PointRow[]): Promise<void> {
  for (const part of chunks(rows, 80)) {
    const params: Param[] = []
    for (const r of part) params.push(r.series.streamId, r.series.sourceId, r.series.domain, r.value, timeParam(r.time), r.classification, r.sequence, r.metadata, timeParam(r.ingestTime))
    await tx.run(
      `INSERT INTO "data_points" ("stream_id", "source_id", "domain", "value", "timestamp", "classification", "sequence", "domain_metadata", "ingested_at") VALUES ${marks(part.length, '(?, ?, ?, ?, ?, ?, ?, ?, ?)')}`,
      params,
    )
  }
}

async function existingKeysSql(tx: SqlExecutor, keys: readonly PointKey[]): Promise<Set<string>> {
  const found = new Set<string>()
  for (const part of chunks(keys, 150)) {
    const where = part.map(() => '("domain" = ? AND "source_id" = ? AND "stream_id" = ? AND "timestamp" = ? AND "sequence" = ?)').join(' OR ')
    const rows = await tx.all(
      `SELECT "domain", "source_id", "stream_id", "timestamp", "sequence" FROM "data_points" WHERE ${where}`,
      part.flatMap((k) => [k.series.domain, k.series.sourceId, k.series.streamId, timeParam(k.time), k.sequence]),
    )
    for (const r of rows) found.add(pointKeyString({ series: { seriesId: seriesIdOf(r) }, time: toMsOrNull(r['timestamp']) ?? 0, sequence: toNumber(r['sequence']) }))
  }
  return found
}

async function saveStatesSql(tx: SqlExecutor, states: ReadonlyArray<{ seriesId: string; state: string }>): Promise<void> {
  for (const s of states) await tx.run(`UPDATE "stream_rule_state" SET "state" = ?, "updated_at" = ${tx.dialect.now} WHERE "series_id" = ?`, [s.state, s.seriesId])
}

async function writeAlert(tx: SqlExecutor, a: StreamAlertWrite, opened: number[]): Promise<void> {
  const s = a.series
  const t = tx.dialect.bool(true)
  const f = tx.dialect.bool(false)
  const where = `"domain" = ? AND "source_id" = ? AND "stream_id" = ? AND "is_active" = ${t}`
  if (a.kind === 'resolve') {
    await tx.run(`UPDATE "stream_alerts" SET "is_active" = ${f}, "resolved_at" = ?, "resolution_reason" = ? WHERE ${where}`, [timeParam(a.time), a.reason, s.domain, s.sourceId, s.streamId])
    return
  }
  if (a.kind === 'update') {
    const n = await tx.run(`UPDATE "stream_alerts" SET "severity" = ?, "value" = ?, "threshold_violated" = ?, "message" = ? WHERE ${where}`, [a.severity, a.value, a.thresholdViolated, a.message, s.domain, s.sourceId, s.streamId])
    if (n > 0) return
    // Resolved behind our back (an operator): open a new one instead.
  }
  opened.push(await tx.insert('stream_alerts', { stream_id: s.streamId, source_id: s.sourceId, domain: s.domain, severity: a.severity, value: a.value, threshold_violated: a.thresholdViolated, message: a.message, triggered_at: timeParam(a.time), is_active: true }))
}

/** One flush's transaction over the universal tables. */
export function createSqlUniversalTx(tx: SqlExecutor, hooks: UniversalSqlHooks): UniversalTx {
  return {
    async lockSeries(series) {
      const ids = [...new Set(series.map((s) => s.seriesId))].sort()
      const out = new Map<string, unknown>()
      for (const part of chunks(ids, 500)) {
        const list = marks(part.length, '?')
        await tx.run(`INSERT INTO "stream_rule_state" ("series_id", "state") VALUES ${marks(part.length, "(?, '{}')")} ON CONFLICT ("series_id") DO NOTHING`, part)
        for (const r of await tx.all(`SELECT "series_id", "state" FROM "stream_rule_state" WHERE "series_id" IN (${list}) ORDER BY "series_id" ${hooks.lockClause}`, part)) {
          const state = toJson(r['state'])
          const empty = state !== null && typeof state === 'object' && Object.keys(state).length === 0
          out.set(String(r['series_id']), empty ? null : state)
        }
      }
      return out
    },
    async lastPoints(series) {
      // One statement per 100 series (not one per series): a UNION ALL of each series' newest point, each
      // branch one descent of the (stream_id, source_id, timestamp) index; "i" says whose row it is.
      const out = new Map<string, { value: number; time: number }>()
      for (const part of chunks(series, 100)) {
        const branch = (i: number): string => `SELECT * FROM (SELECT ${i} AS "i", "value", "timestamp" FROM "data_points" WHERE "stream_id" = ? AND "source_id" = ? AND "domain" = ? ORDER BY "timestamp" DESC ${tx.dialect.limit(1)}) AS q${i}`
        const rows = await tx.all(part.map((_, i) => branch(i)).join(' UNION ALL '), part.flatMap((s) => [s.streamId, s.sourceId, s.domain]))
        for (const r of rows) {
          const s = part[toNumber(r['i'])]
          if (s) out.set(s.seriesId, { value: toNumber(r['value']), time: toMsOrNull(r['timestamp']) ?? 0 })
        }
      }
      return out
    },
    async activeAlerts(series) {
      const out = new Map<string, ActiveStreamAlert>()
      const t = tx.dialect.bool(true)
      for (const r of await bySeries(tx, series, (w) => `SELECT "id", "domain", "source_id", "stream_id", "severity", "value", "triggered_at" FROM "stream_alerts" WHERE "is_active" = ${t} AND (${w})`)) out.set(seriesIdOf(r), alertOf(r))
      return out
    },
    existingKeys: (keys) => (keys.length === 0 ? Promise.resolve(new Set<string>()) : (hooks.existingKeys ?? existingKeysSql)(tx, keys)),
    async write(flush) {
      if (flush.rows.length > 0) await (hooks.insertPoints ?? insertPointsSql)(tx, flush.rows)
      const openedAlerts: number[] = []
      for (const a of flush.alerts) await writeAlert(tx, a, openedAlerts)
      if (flush.states.length > 0) await (hooks.saveStates ?? saveStatesSql)(tx, flush.states)
      if (flush.audit.length > 0) await (hooks.insertAudit ?? insertAuditSql)(tx, flush.audit)
      return { openedAlerts }
    },
  }
}

/** `GET /series/{id}/status`. */
export async function seriesStatusSql(exec: SqlExecutor, s: SeriesRef): Promise<SeriesStatus> {
  const t = exec.dialect.bool(true)
  const key = [s.streamId, s.sourceId, s.domain]
  const latestRows = await exec.all(`SELECT "value", "timestamp", "classification", "ingested_at" FROM "data_points" WHERE "stream_id" = ? AND "source_id" = ? AND "domain" = ? ORDER BY "timestamp" DESC ${exec.dialect.limit(1)}`, key)
  const countRows = await exec.all(`SELECT count(*) AS "n" FROM "data_points" WHERE "stream_id" = ? AND "source_id" = ? AND "domain" = ?`, key)
  const alertRows = await exec.all(`SELECT "id", "severity", "value", "triggered_at", "threshold_violated", "message" FROM "stream_alerts" WHERE "stream_id" = ? AND "source_id" = ? AND "domain" = ? AND "is_active" = ${t}`, key)
  const l = latestRows[0]
  const a = alertRows[0]
  return {
    latest: l ? { value: toNumber(l['value']), time: toMsOrNull(l['timestamp']) ?? 0, classification: String(l['classification']), ingestTime: toMsOrNull(l['ingested_at']) ?? 0 } : null,
    activeAlert: a ? { ...alertOf(a), thresholdViolated: toStringOrNull(a['threshold_violated']), message: toStringOrNull(a['message']) } : null,
    points: toNumber(countRows[0]?.['n'] ?? 0),
  }
}
