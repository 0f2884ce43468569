import type { StatusStore } from '../../../ports/status-store.js'
import type { SqlExecutor } from './executor.js'
import { toIsoOrNull, toJson, toNumber, toNumberOrNull, toStringOrNull } from './row.js'

const ACTIVE_ALERT = `SELECT "id", "sensor_id", "device_id", "threshold_id", "severity", "status", "triggered_value", "triggered_at" FROM "alerts" WHERE "sensor_id" = ? AND "status" = 'active' ORDER BY "triggered_at" DESC`
const ACTIVE_WARNING = `SELECT "id", "sensor_id", "device_id", "event_type", "event_code", "status", "created_at", "title", "message", "payload" FROM "ml_events" WHERE "sensor_id" = ? AND "event_code" = 'DELTA_SPIKE' AND "status" = 'active' ORDER BY "created_at" DESC`
const CURRENT_PREDICTION = `SELECT "id", "sensor_id", "model_id", "predicted_value", "confidence", "predicted_at", "target_timestamp" FROM "predictions" WHERE "sensor_id" = ? ORDER BY "predicted_at" DESC`
const STATE = `SELECT s."operational_state", l."latest_timestamp" FROM "sensors" s LEFT JOIN "sensor_readings_latest" l ON l."sensor_id" = s."id" WHERE s."id" = ?`

/** The status queries over any engine (three small indexed lookups, newest row first). */
export function createSqlStatusStore(exec: SqlExecutor): StatusStore {
  const first = async (sql: string, id: number) => (await exec.all(`${sql} ${exec.dialect.limit(1)}`, [id]))[0]
  return {
    async sensorStatus(sensorId) {
      const [a, w, p, s] = await Promise.all([first(ACTIVE_ALERT, sensorId), first(ACTIVE_WARNING, sensorId), first(CURRENT_PREDICTION, sensorId), first(STATE, sensorId)])
      let payload: unknown = null
      if (w) {
        const parsed = toJson(w['payload'])
        payload = typeof parsed === 'object' ? parsed : null
      }
      return {
        alert: a
          ? {
              id: toNumber(a['id']),
              sensor_id: toNumber(a['sensor_id']),
              device_id: toNumber(a['device_id']),
              threshold_id: toNumberOrNull(a['threshold_id']),
              severity: String(a['severity']),
              status: String(a['status']),
              triggered_value: toNumber(a['triggered_value']),
              triggered_at: toIsoOrNull(a['triggered_at']) ?? '',
            }
          : null,
        warning: w
          ? {
              id: toNumber(w['id']),
              sensor_id: toNumber(w['sensor_id']),
              device_id: toNumber(w['device_id']),
              event_type: String(w['event_type']),
              event_code: String(w['event_code']),
              status: String(w['status']),
              created_at: toIsoOrNull(w['created_at']) ?? '',
              title: toStringOrNull(w['title']),
              message: toStringOrNull(w['message']),
              payload,
            }
          : null,
        prediction: p
          ? {
              id: toNumber(p['id']),
              sensor_id: toNumber(p['sensor_id']),
              model_id: toNumber(p['model_id']),
              predicted_value: toNumber(p['predicted_value']),
              confidence: toNumber(p['confidence']),
              predicted_at: toIsoOrNull(p['predicted_at']) ?? '',
              target_timestamp: toIsoOrNull(p['target_timestamp']) ?? '',
            }
          : null,
        operationalState: s ? toStringOrNull(s['operational_state']) : null,
        latestTime: s ? toIsoOrNull(s['latest_timestamp']) : null,
      }
    },
  }
}
