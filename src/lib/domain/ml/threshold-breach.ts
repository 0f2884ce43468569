import { violatesThreshold } from '../rules/evaluate.js'
import { severityRank, type Severity, type ThresholdRule } from '../rules/types.js'

export const PRED_THRESHOLD_BREACH = 'PRED_THRESHOLD_BREACH'

export type BreachEventType = 'critical' | 'warning' | 'notice'

/** A `PRED_THRESHOLD_BREACH` event (and its notification) to write. */
export interface ThresholdBreach {
  threshold: ThresholdRule
  eventType: BreachEventType
  severity: Severity
  title: string
  message: string
  payload: {
    threshold_id: number
    condition_type: string
    threshold_value_min: number | null
    threshold_value_max: number | null
    predicted_value: number
  }
}

/**
 * The threshold a predicted value violates by DESIGN §4's rules (a null bound is ignored), the highest
 * severity winning, then the lowest id; null when none. A forecast is one value, so
 * `consecutive_readings` does not apply. Title and message keep the legacy wording (reference §13.1).
 */
export function thresholdBreach(thresholds: readonly ThresholdRule[], predicted: number): ThresholdBreach | null {
  let hit: ThresholdRule | null = null
  for (const t of thresholds) {
    if (!violatesThreshold(t, predicted)) continue
    if (hit === null || severityRank(t.severity) > severityRank(hit.severity) || (severityRank(t.severity) === severityRank(hit.severity) && t.id < hit.id)) hit = t
  }
  if (hit === null) return null
  return {
    threshold: hit,
    eventType: hit.severity === 'critical' ? 'critical' : hit.severity === 'warning' ? 'warning' : 'notice',
    severity: hit.severity,
    title: `Predicción viola umbral: ${hit.name ?? `#${hit.id}`}`,
    message: `predicted_value=${predicted} threshold_id=${hit.id}`,
    payload: { threshold_id: hit.id, condition_type: hit.condition, threshold_value_min: hit.min, threshold_value_max: hit.max, predicted_value: predicted },
  }
}
