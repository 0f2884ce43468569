import type { StatusStore } from '../ports/status-store.js'

/**
 * `/sensors/{id}/status` (reference §1.8): the active alert, the active DELTA_SPIKE warning and the
 * current prediction; `final_state` alert > warning > prediction > unknown. A NULL threshold id is
 * reported as null (the original crashed). `operational_state` reads STALE when the latest reading is
 * older than STALE_AFTER.
 */
export async function sensorStatus(store: StatusStore, sensorId: number, options: { now: number; staleAfterMs: number }) {
  const rows = await store.sensorStatus(sensorId)
  const finalState = rows.alert ? 'alert' : rows.warning ? 'warning' : rows.prediction ? 'prediction' : 'unknown'
  const latest = rows.latestTime === null ? null : Date.parse(rows.latestTime)
  const stale = latest !== null && options.now - latest > options.staleAfterMs
  return {
    sensor_id: sensorId,
    final_state: finalState,
    alert_active: rows.alert,
    warning_active: rows.warning,
    prediction_current: rows.prediction,
    operational_state: rows.operationalState === null ? null : stale ? 'STALE' : rows.operationalState,
    latest_reading_at: rows.latestTime,
  }
}
