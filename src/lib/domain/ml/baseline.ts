import { leastSquaresSlope, mean } from './stats.js'
import { type Forecast, trendOf, type WindowPoint } from './types.js'

/**
 * The moving average of reference §13.1: the mean of the last min(window, n) values, confidence
 * min(1, n_used / window); an empty window gives (0, 0). The trend is the least-squares slope of the
 * values over their times, per second.
 */
export function baselineForecast(points: readonly WindowPoint[], window: number): Forecast {
  const used = points.slice(Math.max(0, points.length - window))
  if (used.length === 0 || window <= 0) return { value: 0, confidence: 0, trend: 'stable' }
  const slope = leastSquaresSlope(
    used.map((p) => p.timeMs / 1000),
    used.map((p) => p.value),
  )
  return { value: mean(used.map((p) => p.value)), confidence: Math.min(1, used.length / window), trend: trendOf(slope) }
}
