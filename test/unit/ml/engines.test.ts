import { describe, expect, it } from 'vitest'

import { assessAnomaly, baselineForecast, engineFor, expectedRange, explainRequestBody, predictSensor, riskOf, taylorClampBounds, taylorDt, taylorForecast, thresholdBreach, type WindowPoint } from '../../../src/lib/domain/ml/index.js'
import { leastSquaresSlope, mean, populationVariance } from '../../../src/lib/domain/ml/stats.js'
import { trendOf } from '../../../src/lib/domain/ml/types.js'
import type { ThresholdRule } from '../../../src/lib/domain/rules/types.js'

/** Points `step` seconds apart from t = 0. */
const series = (values: number[], step = 1): WindowPoint[] => values.map((value, i) => ({ value, timeMs: i * step * 1000 }))

const rule = (over: Partial<ThresholdRule> & Pick<ThresholdRule, 'id' | 'condition'>): ThresholdRule => ({ name: `t${over.id}`, min: null, max: null, severity: 'warning', consecutiveReadings: 1, ...over })

describe('baseline (moving average)', () => {
  it('is the mean of the window, confidence n_used / window', () => {
    expect(baselineForecast(series([1, 2, 3, 4]), 60)).toEqual({ value: 2.5, confidence: 4 / 60, trend: 'up' })
  })
  it('uses only the last `window` values', () => {
    expect(baselineForecast(series([100, 1, 2, 3, 4]), 2)).toEqual({ value: 3.5, confidence: 1, trend: 'up' })
  })
  it('window 60 with 30 readings: confidence 0.5; flat: stable', () => {
    expect(baselineForecast(series(Array.from({ length: 30 }, () => 7)), 60)).toEqual({ value: 7, confidence: 0.5, trend: 'stable' })
  })
  it('an empty window gives (0, 0)', () => {
    expect(baselineForecast([], 60)).toEqual({ value: 0, confidence: 0, trend: 'stable' })
  })
  it('trend is the least-squares slope per second: falling 1 per 10 s is down, 0.05 per 10 s is stable', () => {
    expect(baselineForecast(series([10, 9, 8], 10), 60).trend).toBe('down')
    expect(baselineForecast(series([10, 10.05, 10.1], 10), 60).trend).toBe('stable')
  })
})

describe('taylor (finite differences)', () => {
  it('Δt is the median of the positive gaps; 1 without any', () => {
    expect(taylorDt([0, 0, 2, 3, 7])).toBe(2)
    expect(taylorDt([5, 5, 5])).toBe(1)
    expect(taylorDt([])).toBe(1)
  })

  it('order 1: f + f\'h, confidence capped at 0.95, trend up', () => {
    // f' = (12.5 - 12) / 1 = 0.5; P = 12.5 + 0.5 = 13 (inside [10 - 0.75, 12.5 + 0.75]).
    const f = taylorForecast(series([10, 11, 12, 12.5]), { order: 1, horizon: 1 })
    expect(f).toMatchObject({ value: 13, confidence: 0.95, trend: 'up', fallback: false, clamped: false, dt: 1 })
  })

  it('order 2: f + f\'h + f\'\'h²/2', () => {
    // f' = 2, f'' = 14 - 24 + 9 = -1; P = 14 + 2 - 0.5 = 15.5.
    expect(taylorForecast(series([0, 5, 9, 12, 14]), { order: 2, horizon: 1 })).toMatchObject({ value: 15.5, trend: 'up', clamped: false })
  })

  it('order 2 with Δt = 2 s and horizon 2: h = 4', () => {
    // f' = (14 - 12) / 2 = 1, f'' = (14 - 24 + 9) / 4 = -0.25; P = 14 + 4 - 0.25 * 16 / 2 = 16.
    expect(taylorForecast(series([0, 5, 9, 12, 14], 2), { order: 2, horizon: 2 })).toMatchObject({ value: 16, dt: 2, clamped: false })
  })

  it('order 3: adds f\'\'\'h³/6', () => {
    // f' = 3, f'' = 27 - 48 + 18 = -3, f''' = 27 - 72 + 54 - 10 = -1; P = 27 + 3 - 1.5 - 1/6.
    const f = taylorForecast(series([0, 10, 18, 24, 27]), { order: 3, horizon: 1 })
    expect(f.value).toBeCloseTo(28 + 1 / 3, 12)
    expect(f.clamped).toBe(false)
  })

  it('clamps to [min - 0.3·range, max + 0.3·range]; confidence from the variance of f\'\'', () => {
    // f' = -2 -> P = 98, below 99 - 0.9 = 98.1. f'' over the window: -3, 5, -5 -> Var 56/3, / |100| -> s = 0.18667.
    const f = taylorForecast(series([100, 101, 99, 102, 100]), { order: 1, horizon: 1 })
    expect(f.value).toBeCloseTo(98.1, 12)
    expect(f.clamped).toBe(true)
    expect(f.trend).toBe('down')
    expect(f.confidence).toBeCloseTo(1 - 56 / 3 / 100, 12)
  })

  it('a cubic series projected by order 3 is clamped to max + 30 %', () => {
    // 64 + 37 + 9 + 1 = 111 > 64 + 19.2.
    expect(taylorForecast(series([0, 1, 8, 27, 64]), { order: 3, horizon: 1 })).toMatchObject({ value: 83.2, clamped: true })
  })

  it('a noisy window gets the floor confidence 0.3', () => {
    expect(taylorForecast(series([10, 12, 9, 13, 10]), { order: 1, horizon: 1 }).confidence).toBeCloseTo(0.3, 12)
  })

  it('clamp margins: flat windows use 0.3·|min|, flat zero windows 0.1', () => {
    expect(taylorClampBounds([5, 5])).toEqual([3.5, 6.5])
    expect(taylorClampBounds([0, 0])).toEqual([-0.1, 0.1])
  })

  it('too few points (n < order + 2): mean of the last 3, confidence max(0.3, min(0.5, n/10)), stable', () => {
    expect(taylorForecast(series([5, 7, 9]), { order: 2, horizon: 1 })).toMatchObject({ value: 7, confidence: 0.3, trend: 'stable', fallback: true })
    expect(taylorForecast(series([1, 2, 3, 4]), { order: 3, horizon: 1 })).toMatchObject({ value: 3, confidence: 0.4, fallback: true })
  })

  it('the order is clamped to 1..3', () => {
    expect(taylorForecast(series([0, 10, 18, 24, 27]), { order: 7, horizon: 1 }).value).toBeCloseTo(28 + 1 / 3, 12)
    expect(taylorForecast(series([10, 11, 12, 12.5]), { order: 0, horizon: 1 }).value).toBe(13)
  })
})

describe('anomaly score, risk and severity', () => {
  it('a spike after a flat history scores 1 (stdev floored at ε)', () => {
    expect(assessAnomaly([10, 10, 10, 10, 20])).toMatchObject({ score: 1, isAnomaly: true, riskLevel: 'high', severity: 'critical' })
  })
  it('z = |last - mean(rest)| / stdev(rest), score z/6', () => {
    const a = assessAnomaly([1, 2, 3, 4, 5])
    expect(a.z).toBeCloseTo(2.5 / Math.sqrt(1.25), 12)
    expect(a.score).toBeCloseTo(2.5 / Math.sqrt(1.25) / 6, 12)
    expect(a).toMatchObject({ isAnomaly: false, riskLevel: 'low', severity: 'info' })
  })
  it('z >= 3 is an anomaly; steps at 0.5 and 0.8', () => {
    // rest [0, 2]: mean 1, stdev 1; last 4 -> z = 3.
    expect(assessAnomaly([0, 2, 4])).toMatchObject({ z: 3, score: 0.5, isAnomaly: true, riskLevel: 'medium', severity: 'warning' })
    expect(riskOf(0.79)).toEqual({ riskLevel: 'medium', severity: 'warning' })
    expect(riskOf(0.8)).toEqual({ riskLevel: 'high', severity: 'critical' })
    expect(riskOf(0.49)).toEqual({ riskLevel: 'low', severity: 'info' })
  })
})

describe('threshold breach of a forecast', () => {
  const warm = rule({ id: 1, condition: 'greater_than', min: 50, severity: 'warning', name: 'warm' })
  const hot = rule({ id: 2, condition: 'greater_than', min: 80, severity: 'critical', name: 'hot' })
  it('the highest severity violated wins; event type and texts', () => {
    const b = thresholdBreach([warm, hot], 90)
    expect(b).toMatchObject({ eventType: 'critical', severity: 'critical', title: 'Predicción viola umbral: hot', message: 'predicted_value=90 threshold_id=2' })
    expect(b?.payload).toEqual({ threshold_id: 2, condition_type: 'greater_than', threshold_value_min: 80, threshold_value_max: null, predicted_value: 90 })
    expect(thresholdBreach([warm, hot], 60)?.eventType).toBe('warning')
    expect(thresholdBreach([rule({ id: 3, condition: 'less_than', min: 0, severity: 'info' })], -1)?.eventType).toBe('notice')
  })
  it('no violation, no breach; out_of_range ignores a null bound (DESIGN §4)', () => {
    expect(thresholdBreach([warm, hot], 50)).toBeNull()
    expect(thresholdBreach([rule({ id: 4, condition: 'out_of_range', min: 10 })], 5)?.threshold.id).toBe(4)
    expect(thresholdBreach([rule({ id: 4, condition: 'out_of_range', min: 10 })], 500)).toBeNull()
  })
})

describe('a whole prediction', () => {
  it('fills every column; fewer than 2 readings: none', () => {
    const now = Date.UTC(2026, 0, 1)
    const out = predictSensor(series([10, 10, 10, 10, 40]), [rule({ id: 9, condition: 'greater_than', min: 15 })], { engine: 'baseline', window: 60, horizonMinutes: 10, taylorOrder: 2, taylorHorizon: 1, now })
    expect(out?.prediction).toEqual({
      engine: 'baseline',
      predictedValue: 16,
      confidence: 5 / 60,
      predictedAt: now,
      targetTimestamp: now + 600_000,
      horizonMinutes: 10,
      trend: 'up',
      windowPoints: 5,
      isAnomaly: true,
      anomalyScore: 1,
      riskLevel: 'high',
      severity: 'critical',
      status: 'active',
    })
    expect(out?.breach?.threshold.id).toBe(9)
    expect(predictSensor(series([1]), [], { engine: 'baseline', window: 60, horizonMinutes: 10, taylorOrder: 2, taylorHorizon: 1, now })).toBeNull()
  })
  it('engine: --engine wins, then the taylor whitelist, then the default', () => {
    expect(engineFor(1, 'baseline', 'taylor', new Set([1]))).toBe('baseline')
    expect(engineFor(1, undefined, 'baseline', new Set([1]))).toBe('taylor')
    expect(engineFor(2, undefined, 'baseline', new Set([1]))).toBe('baseline')
  })
})

describe('explainer request', () => {
  it('expected range from the first active threshold by id, Python float style', () => {
    expect(expectedRange([rule({ id: 2, condition: 'greater_than', min: 1 }), rule({ id: 1, condition: 'out_of_range', min: 10, max: 30 })])).toBe('10.0-30.0')
    expect(expectedRange([rule({ id: 1, condition: 'greater_than', min: 2.5 })])).toBe('>= 2.5')
    expect(expectedRange([rule({ id: 1, condition: 'less_than', max: 7 })])).toBe('<= 7.0')
    expect(expectedRange([rule({ id: 1, condition: 'equal_to' })])).toBe('unknown')
    expect(expectedRange([])).toBe('unknown')
  })
  it('the body of reference §13.2 with the sensor type as the metric', () => {
    expect(explainRequestBody({ sensorType: 'temperature', predictedValue: 41.5, anomalyScore: 0.9, thresholds: [] })).toEqual({
      context: 'industrial_iot_monitoring',
      model_output: { metric: 'temperature', observed_value: 41.5, expected_range: 'unknown', anomaly_score: 0.9, model: 'sklearn_regression_iforest', model_version: '1.0.0' },
    })
    expect(explainRequestBody({ sensorType: null, predictedValue: 1, anomalyScore: 1, thresholds: [] }).model_output.metric).toBe('generic')
  })
})

describe('the loop forms of the hot path equal the textbook formulas bit for bit', () => {
  // A small deterministic generator: realistic epoch times (ms, with fractions), values of mixed scale.
  const lcg = (seed: number) => () => ((seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648)
  const windows = (count: number): WindowPoint[][] => {
    const r = lcg(7)
    return Array.from({ length: count }, (_, k) => {
      const n = 1 + Math.floor(r() * 70)
      let t = 1_767_614_400_000 + r() * 1e9
      return Array.from({ length: n }, () => ({ value: (r() - 0.3) * 10 ** Math.floor(r() * 6 - 2), timeMs: (t += k % 5 === 0 ? 0 : r() * 120_000) }))
    })
  }
  it('baseline: mean of the last min(window, n) values and the least-squares slope of those values over seconds', () => {
    for (const w of windows(300)) {
      for (const window of [1, 2, 10, 60]) {
        const used = w.slice(Math.max(0, w.length - window))
        expect(baselineForecast(w, window)).toEqual({ value: mean(used.map((p) => p.value)), confidence: Math.min(1, used.length / window), trend: trendOf(leastSquaresSlope(used.map((p) => p.timeMs / 1000), used.map((p) => p.value))) })
      }
    }
  })
  it('anomaly: z from the mean and population standard deviation of every value but the last', () => {
    for (const w of windows(300)) {
      const values = w.map((p) => p.value)
      if (values.length < 2) continue
      const rest = values.slice(0, -1)
      const z = Math.abs((values.at(-1) as number) - mean(rest)) / Math.max(Math.sqrt(populationVariance(rest)), 1e-9)
      expect(assessAnomaly(values).z).toBe(z)
    }
  })
})
