import { prefixMeanVariance } from './stats.js'

export type RiskLevel = 'low' | 'medium' | 'high'
export type PredictionSeverity = 'info' | 'warning' | 'critical'

export interface AnomalyAssessment {
  /** |last - mean(rest)| / max(stdev(rest), ε). */
  z: number
  /** min(1, z / 6). */
  score: number
  /** z >= 3. */
  isAnomaly: boolean
  riskLevel: RiskLevel
  severity: PredictionSeverity
}

const EPSILON = 1e-9
const ANOMALY_Z = 3

/**
 * DESIGN §11: the last value against the rest of the window (population standard deviation, floored
 * at ε so a flat history still scores a jump). Risk and severity step up at scores 0.5 and 0.8.
 */
export function assessAnomaly(values: readonly number[]): AnomalyAssessment {
  if (values.length < 2) return { z: 0, score: 0, isAnomaly: false, ...riskOf(0) }
  // The rest = every value but the last (not copied).
  const rest = prefixMeanVariance(values, values.length - 1)
  const last = values[values.length - 1] as number
  const z = Math.abs(last - rest.mean) / Math.max(Math.sqrt(rest.variance), EPSILON)
  const score = Math.min(1, z / 6)
  return { z, score, isAnomaly: z >= ANOMALY_Z, ...riskOf(score) }
}

export function riskOf(score: number): { riskLevel: RiskLevel; severity: PredictionSeverity } {
  if (score >= 0.8) return { riskLevel: 'high', severity: 'critical' }
  if (score >= 0.5) return { riskLevel: 'medium', severity: 'warning' }
  return { riskLevel: 'low', severity: 'info' }
}
