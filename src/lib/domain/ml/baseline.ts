import { type Forecast, trendOf, type WindowPoint } from './types.js'

/**
 * The moving average of reference §13.1: the mean of the last min(window, n) values, confidence
 * min(1, n_used / window); an empty window gives (0, 0). The trend is the least-squares slope of the
 * values over their times, per second.
 */
export function baselineForecast(points: readonly WindowPoint[], window: number): Forecast {
  const from = Math.max(0, points.length - window)
  const n = points.length - from
  if (n <= 0 || window <= 0) return { value: 0, confidence: 0, trend: 'stable' }
  // One pass for the sums, one for the slope: the arithmetic of mean() and leastSquaresSlope() in the same
  // order (bit-identical results) without the four arrays they would need (this runs once per sensor).
  let sx = 0
  let sy = 0
  for (let i = from; i < points.length; i++) {
    const p = points[i] as WindowPoint
    sx += p.timeMs / 1000
    sy += p.value
  }
  const value = sy / n
  let slope = 0
  if (n >= 2) {
    const mx = sx / n
    let num = 0
    let den = 0
    for (let i = from; i < points.length; i++) {
      const p = points[i] as WindowPoint
      const dx = p.timeMs / 1000 - mx
      num += dx * (p.value - value)
      den += dx * dx
    }
    slope = den === 0 ? 0 : num / den
  }
  return { value, confidence: Math.min(1, n / window), trend: trendOf(slope) }
}
