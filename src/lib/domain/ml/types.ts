/** The engines of `ingest batch predict` (DESIGN §11). */
export const PREDICTION_ENGINES = ['baseline', 'taylor'] as const
export type PredictionEngine = (typeof PREDICTION_ENGINES)[number]

export type Trend = 'up' | 'down' | 'stable'

/** One reading of a window: its value and its time (device time, else ingest time) in epoch ms. */
export interface WindowPoint {
  value: number
  timeMs: number
}

/** What an engine forecasts from a window. */
export interface Forecast {
  value: number
  confidence: number
  trend: Trend
}

/** A slope per second above 0.01 is "up", below -0.01 "down". */
export function trendOf(slopePerSecond: number): Trend {
  if (slopePerSecond > 0.01) return 'up'
  if (slopePerSecond < -0.01) return 'down'
  return 'stable'
}
