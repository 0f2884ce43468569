import { describe, expect, it } from 'vitest'
import { evaluateReading, violatesThreshold } from '../../../../src/lib/domain/rules/index.js'
import type { Condition, Severity, ThresholdRule } from '../../../../src/lib/domain/rules/index.js'
import { LIVE, SEC, T0, codes, normalState, runSequence, sensorRules, series, threshold } from './rules-fixtures.js'

function rule(condition: Condition, min: number | null, max: number | null): ThresholdRule {
  return threshold({ id: 1, condition, min, max })
}

describe('threshold conditions', () => {
  it.each<[string, ThresholdRule, number, boolean]>([
    ['greater_than just above min', rule('greater_than', 10, null), 10.0001, true],
    ['greater_than at min', rule('greater_than', 10, null), 10, false],
    ['greater_than below min', rule('greater_than', 10, null), 9, false],
    ['greater_than ignores max', rule('greater_than', 50, 5), 20, false],
    ['greater_than with a null min', rule('greater_than', null, 5), 1e9, false],
    ['less_than just below min', rule('less_than', 10, null), 9.99, true],
    ['less_than at min', rule('less_than', 10, null), 10, false],
    // The legacy pipelines compared less_than with max; DESIGN says min.
    ['less_than uses min, not max', rule('less_than', 10, 100), 50, false],
    ['less_than with a null min', rule('less_than', null, 100), -1e9, false],
    ['equal_to at min', rule('equal_to', 5, null), 5, true],
    ['equal_to close to min', rule('equal_to', 5, null), 5.0000001, false],
    ['equal_to with a null min', rule('equal_to', null, 5), 5, false],
    ['out_of_range below min', rule('out_of_range', 0, 10), -0.1, true],
    ['out_of_range above max', rule('out_of_range', 0, 10), 10.1, true],
    ['out_of_range at min', rule('out_of_range', 0, 10), 0, false],
    ['out_of_range at max', rule('out_of_range', 0, 10), 10, false],
    ['out_of_range, null min ignored (low value)', rule('out_of_range', null, 10), -1000, false],
    ['out_of_range, null min ignored (high value)', rule('out_of_range', null, 10), 11, true],
    ['out_of_range, null max ignored (high value)', rule('out_of_range', 0, null), 1e9, false],
    ['out_of_range, null max ignored (low value)', rule('out_of_range', 0, null), -1, true],
    ['out_of_range with both bounds null', rule('out_of_range', null, null), 0, false],
  ])('%s: %j, value %d -> fires %s', (_label, t, value, fires) => {
    expect(violatesThreshold(t, value)).toBe(fires)
    const result = evaluateReading(sensorRules({ thresholds: [t] }), normalState(), { value, time: T0 + 10 * SEC }, LIVE)
    expect(result.classification).toBe(fires ? 'ALERT' : 'ML_PREDICTION')
    expect(codes(result)).toEqual([fires ? 'THRESHOLD' : 'CLEAN'])
  })

  it('records rule, limits, observed value and severity in the THRESHOLD reason', () => {
    const t = threshold({ id: 4, name: 'hard-limits', condition: 'out_of_range', min: 0, max: 90, severity: 'critical' })
    const result = evaluateReading(sensorRules({ thresholds: [t] }), normalState(), { value: 95, time: T0 + SEC }, LIVE)
    expect(result.reasons).toEqual([
      { code: 'THRESHOLD', rule: 'hard-limits', thresholdId: 4, observed: 95, limit: 0, limitMax: 90, severity: 'critical' },
    ])
  })

  it('names an unnamed threshold by its condition and omits the unused max', () => {
    const t = threshold({ id: 9, name: null, condition: 'greater_than', min: 100, max: 500, severity: 'warning' })
    const result = evaluateReading(sensorRules({ thresholds: [t] }), normalState(), { value: 101, time: T0 + SEC }, LIVE)
    expect(result.reasons).toEqual([
      { code: 'THRESHOLD', rule: 'greater_than', thresholdId: 9, observed: 101, limit: 100, severity: 'warning' },
    ])
  })
})

describe('consecutive readings', () => {
  it.each<[number, number[], string[]]>([
    [0, [150, 150], ['ALERT', 'ALERT']],
    [1, [150, 150], ['ALERT', 'ALERT']],
    [2, [150, 150, 150], ['PENDING', 'ALERT', 'ALERT']],
    [3, [150, 150, 150, 150], ['PENDING', 'PENDING', 'ALERT', 'ALERT']],
    [2, [150, 50, 150, 150], ['PENDING', 'CLEAN', 'PENDING', 'ALERT']],
    [3, [150, 150, 50, 150, 150, 150], ['PENDING', 'PENDING', 'CLEAN', 'PENDING', 'PENDING', 'ALERT']],
  ])('consecutive_readings %d over %j -> %j', (consecutiveReadings, values, expected) => {
    const rules = sensorRules({ thresholds: [threshold({ id: 1, min: 100, consecutiveReadings })] })
    const results = runSequence(rules, normalState(), series(values, T0))
    const outcome = results.map((r) =>
      r.classification === 'ALERT' ? 'ALERT' : codes(r).includes('THRESHOLD_PENDING') ? 'PENDING' : 'CLEAN',
    )
    expect(outcome).toEqual(expected)
  })

  it('classifies a pending violation as ML_PREDICTION with count/required, not clean', () => {
    const rules = sensorRules({ resolveAfterReadings: 3, thresholds: [threshold({ id: 2, min: 100, consecutiveReadings: 3 })] })
    const state = normalState({ cleanStreak: 2, activeAlert: { severity: 'critical', thresholdId: 2 }, operationalState: 'ALERT' })
    const result = evaluateReading(rules, state, { value: 150, time: T0 + SEC }, LIVE)
    expect(result.classification).toBe('ML_PREDICTION')
    expect(result.reasons).toEqual([
      { code: 'THRESHOLD_PENDING', rule: 'greater_than', thresholdId: 2, observed: 150, severity: 'critical', count: 1, required: 3 },
    ])
    expect(result.state.cleanStreak).toBe(0)
    // Had the reading counted as clean, this third clean reading would have resolved the alert.
    expect(result.effects).toEqual([])
    expect(result.state.consecutive).toEqual({ '2': 1 })
  })

  it('keeps counts only for violated thresholds that still exist', () => {
    const rules = sensorRules({ thresholds: [threshold({ id: 1, min: 100, consecutiveReadings: 5 }), threshold({ id: 2, min: 200, consecutiveReadings: 5 })] })
    const state = normalState({ consecutive: { '1': 2, '2': 3, '99': 4 } })
    const result = evaluateReading(rules, state, { value: 150, time: T0 + SEC }, LIVE)
    expect(result.state.consecutive).toEqual({ '1': 3 })
  })
})

describe('severity priority', () => {
  it.each<[string, Array<[number, Severity, number]>, number, Severity]>([
    ['critical beats warning and info', [[1, 'info', 10], [2, 'warning', 10], [3, 'critical', 10]], 3, 'critical'],
    ['critical beats warning whatever the order', [[5, 'critical', 10], [2, 'warning', 10]], 5, 'critical'],
    ['ties go to the lowest id', [[5, 'critical', 10], [2, 'critical', 10], [8, 'critical', 10]], 2, 'critical'],
    ['warning beats info', [[1, 'info', 10], [2, 'warning', 10]], 2, 'warning'],
    ['only violated thresholds compete', [[1, 'critical', 1000], [2, 'info', 10]], 2, 'info'],
  ])('%s', (_label, defs, winnerId, severity) => {
    const thresholds = defs.map(([id, sev, min]) => threshold({ id, severity: sev, min }))
    const result = evaluateReading(sensorRules({ thresholds }), normalState(), { value: 50, time: T0 + SEC }, LIVE)
    expect(result.classification).toBe('ALERT')
    expect(result.reasons).toMatchObject([{ code: 'THRESHOLD', thresholdId: winnerId, severity }])
    expect(result.effects).toContainEqual({ kind: 'open_alert', severity, thresholdId: winnerId, value: 50, time: T0 + SEC })
  })

  it('lets a fired warning win over a critical that is still pending', () => {
    const thresholds = [threshold({ id: 1, severity: 'critical', min: 10, consecutiveReadings: 3 }), threshold({ id: 2, severity: 'warning', min: 10 })]
    const result = evaluateReading(sensorRules({ thresholds }), normalState(), { value: 50, time: T0 + SEC }, LIVE)
    expect(result.reasons).toMatchObject([{ code: 'THRESHOLD', thresholdId: 2, severity: 'warning' }])
    expect(result.state.consecutive).toEqual({ '1': 1, '2': 1 })
  })
})
