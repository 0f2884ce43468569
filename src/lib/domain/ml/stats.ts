/** Small numeric helpers of the prediction engines (pure). */

export function mean(values: readonly number[]): number {
  if (values.length === 0) return 0
  let sum = 0
  for (const v of values) sum += v
  return sum / values.length
}

/** Population variance (divides by n); 0 for fewer than one value. */
export function populationVariance(values: readonly number[]): number {
  if (values.length === 0) return 0
  const m = mean(values)
  let sum = 0
  for (const v of values) sum += (v - m) * (v - m)
  return sum / values.length
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  if (sorted.length === 0) return Number.NaN
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/**
 * Mean and population variance of the first `n` values (two passes, the same sums in the same order as
 * mean() and populationVariance() of that prefix, without copying it): the hot path of batch predict.
 */
export function prefixMeanVariance(values: readonly number[], n: number): { mean: number; variance: number } {
  if (n <= 0) return { mean: 0, variance: 0 }
  let sum = 0
  for (let i = 0; i < n; i++) sum += values[i] as number
  const m = sum / n
  let sq = 0
  for (let i = 0; i < n; i++) {
    const d = (values[i] as number) - m
    sq += d * d
  }
  return { mean: m, variance: sq / n }
}

/** Least-squares slope of y over x; 0 when x does not vary. */
export function leastSquaresSlope(xs: readonly number[], ys: readonly number[]): number {
  const n = Math.min(xs.length, ys.length)
  if (n < 2) return 0
  const mx = mean(xs.slice(0, n))
  const my = mean(ys.slice(0, n))
  let num = 0
  let den = 0
  for (let i = 0; i < n; i++) {
    const dx = (xs[i] as number) - mx
    num += dx * ((ys[i] as number) - my)
    den += dx * dx
  }
  return den === 0 ? 0 : num / den
}
