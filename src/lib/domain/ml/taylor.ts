import { mean, median, populationVariance } from './stats.js'
import { type Forecast, trendOf, type WindowPoint } from './types.js'

export interface TaylorOptions {
  /** 1..3 (clamped). */
  order: number
  /** Steps of Δt ahead (>= 1). */
  horizon: number
}

export interface TaylorForecast extends Forecast {
  /** Too few points for the order: the mean of the last 3 values. */
  fallback: boolean
  /** The projection left [min - m, max + m] and was clamped to it. */
  clamped: boolean
  /** Δt in seconds (median of the positive gaps). */
  dt: number
}

const MIN_DT = 1e-6

/** Δt: the median of the strictly positive gaps between consecutive times (seconds); 1 without any; at least 1e-6. */
export function taylorDt(timesSec: readonly number[]): number {
  const gaps: number[] = []
  for (let i = 1; i < timesSec.length; i++) {
    const d = (timesSec[i] as number) - (timesSec[i - 1] as number)
    if (d > 0) gaps.push(d)
  }
  return Math.max(MIN_DT, gaps.length === 0 ? 1 : median(gaps))
}

/** The clamp interval of reference §13.1: [min - m, max + m]. */
export function taylorClampBounds(values: readonly number[]): [number, number] {
  const lo = Math.min(...values)
  const hi = Math.max(...values)
  let margin = 0.3 * (hi - lo)
  if (hi - lo === 0) margin = 0.3 * Math.abs(lo)
  if (margin < 1e-9) margin = 0.1
  return [lo - margin, hi + margin]
}

/**
 * `taylor_finite_differences` (reference §13.1): backward differences at the last point up to `order`,
 * P(h) = f + f'h + f''h²/2 + f'''h³/6 with h = horizon·Δt, clamped to the window's range plus 30 %.
 * Fewer than order + 2 points: the mean of the last 3 values, confidence max(0.3, min(0.5, n/10)), stable.
 * Confidence = min(0.95, max(0.3, 1 - min(s, 0.7))) with s the variance of f'' over the window relative to |f|.
 */
export function taylorForecast(points: readonly WindowPoint[], options: TaylorOptions): TaylorForecast {
  const order = Math.min(3, Math.max(1, Math.trunc(options.order)))
  const values = points.map((p) => p.value)
  const n = values.length
  const dt = taylorDt(points.map((p) => p.timeMs / 1000))
  if (n < order + 2) {
    return { value: mean(values.slice(-3)), confidence: Math.max(0.3, Math.min(0.5, n / 10)), trend: 'stable', fallback: true, clamped: false, dt }
  }
  const f = (k: number): number => values[n - 1 - k] as number
  const d1 = (f(0) - f(1)) / dt
  const d2 = order >= 2 ? (f(0) - 2 * f(1) + f(2)) / dt ** 2 : 0
  const d3 = order >= 3 ? (f(0) - 3 * f(1) + 3 * f(2) - f(3)) / dt ** 3 : 0
  const h = Math.max(1, options.horizon) * dt
  const projected = f(0) + d1 * h + (d2 * h * h) / 2 + (d3 * h * h * h) / 6
  const [lo, hi] = taylorClampBounds(values)
  const value = Math.min(hi, Math.max(lo, projected))
  return { value, confidence: taylorConfidence(values, dt), trend: trendOf(d1), fallback: false, clamped: value !== projected, dt }
}

/** Stability s = min(Var_pop(f'' over the window) / (|f₀|, or 1 when |f₀| <= 1e-6), 1), 0 under 4 points. */
export function taylorConfidence(values: readonly number[], dt: number): number {
  let s = 0
  if (values.length >= 4) {
    const second: number[] = []
    for (let i = 2; i < values.length; i++) second.push(((values[i] as number) - 2 * (values[i - 1] as number) + (values[i - 2] as number)) / dt ** 2)
    const last = Math.abs(values[values.length - 1] as number)
    s = Math.min(populationVariance(second) / (last <= 1e-6 ? 1 : last), 1)
  }
  return Math.min(0.95, Math.max(0.3, 1 - Math.min(s, 0.7)))
}
