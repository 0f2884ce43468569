import type { ThresholdRule } from '../rules/types.js'
import { assessAnomaly, type PredictionSeverity, type RiskLevel } from './anomaly.js'
import { baselineForecast } from './baseline.js'
import { taylorForecast } from './taylor.js'
import { thresholdBreach, type ThresholdBreach } from './threshold-breach.js'
import type { PredictionEngine, Trend, WindowPoint } from './types.js'

export interface PredictOptions {
  engine: PredictionEngine
  /** --window: the most readings used. */
  window: number
  horizonMinutes: number
  taylorOrder: number
  taylorHorizon: number
  /** When the prediction is made (epoch ms). */
  now: number
}

/** Every `predictions` column the job computes (ids aside), DESIGN §11. */
export interface PredictionValues {
  engine: PredictionEngine
  predictedValue: number
  confidence: number
  predictedAt: number
  targetTimestamp: number
  horizonMinutes: number
  trend: Trend
  windowPoints: number
  isAnomaly: boolean
  anomalyScore: number
  riskLevel: RiskLevel
  severity: PredictionSeverity
  status: 'active'
}

export interface PredictionOutcome {
  prediction: PredictionValues
  breach: ThresholdBreach | null
}

/** The ml_models row of an engine (one per sensor and engine). */
export const MODEL_SPECS = {
  baseline: { modelName: 'baseline_moving_average', modelType: 'baseline', version: '1.0.0' },
  taylor: { modelName: 'taylor_finite_differences', modelType: 'taylor', version: '1.0.0' },
} as const satisfies Record<PredictionEngine, { modelName: string; modelType: string; version: string }>

/**
 * One sensor's prediction from its window (oldest first). Fewer than 2 readings: none (null), as in
 * the reference. Non-finite values never reach here (the ingest guards refuse them).
 */
export function predictSensor(points: readonly WindowPoint[], thresholds: readonly ThresholdRule[], options: PredictOptions): PredictionOutcome | null {
  const used = points.length > options.window ? points.slice(points.length - options.window) : points
  if (used.length < 2) return null
  const forecast = options.engine === 'taylor' ? taylorForecast(used, { order: options.taylorOrder, horizon: options.taylorHorizon }) : baselineForecast(used, options.window)
  const anomaly = assessAnomaly(used.map((p) => p.value))
  const prediction: PredictionValues = {
    engine: options.engine,
    predictedValue: forecast.value,
    confidence: forecast.confidence,
    predictedAt: options.now,
    targetTimestamp: options.now + options.horizonMinutes * 60_000,
    horizonMinutes: options.horizonMinutes,
    trend: forecast.trend,
    windowPoints: used.length,
    isAnomaly: anomaly.isAnomaly,
    anomalyScore: anomaly.score,
    riskLevel: anomaly.riskLevel,
    severity: anomaly.severity,
    status: 'active',
  }
  return { prediction, breach: thresholdBreach(thresholds, forecast.value) }
}

/** The engine of a sensor: an explicit --engine wins; otherwise whitelisted sensors use taylor, the rest the default. */
export function engineFor(sensorId: number, explicit: PredictionEngine | undefined, defaultEngine: PredictionEngine, taylorWhitelist: ReadonlySet<number>): PredictionEngine {
  if (explicit !== undefined) return explicit
  return taylorWhitelist.has(sensorId) ? 'taylor' : defaultEngine
}
