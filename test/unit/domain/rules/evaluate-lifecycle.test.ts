import { describe, expect, it } from 'vitest'
import { evaluateReading, evaluateReadingInPlace, initialRuleState } from '../../../../src/lib/domain/rules/index.js'
import type { EvaluateOptions, RuleState, SensorRules } from '../../../../src/lib/domain/rules/index.js'
import {
  BACKFILL,
  BACKFILL_ALERTS,
  HOUR,
  LIVE,
  SEC,
  T0,
  codes,
  deepFreeze,
  deltaRule,
  kinds,
  lastOf,
  normalState,
  runSequence,
  sensorRules,
  series,
  threshold,
} from './rules-fixtures.js'

const alerting = (extra: Partial<SensorRules> = {}): SensorRules => sensorRules({ thresholds: [threshold({ id: 1, min: 100 })], ...extra })

describe('warm-up', () => {
  it.each([1, 3, 10])('with min_readings_for_normal %d, readings 1..N only count and N+1 is the first evaluated', (n) => {
    const values = Array.from({ length: n + 1 }, () => 150)
    const results = runSequence(alerting({ minReadingsForNormal: n }), initialRuleState(), series(values, T0))
    const warmup = results.slice(0, n)
    warmup.forEach((result, index) => {
      expect(result.classification).toBe('ML_PREDICTION')
      expect(result.reasons).toEqual([{ code: 'WARMUP', count: index + 1, required: n }])
      expect(result.effects.some((e) => e.kind === 'open_alert')).toBe(false)
    })
    // Reading N flips the state but is still not evaluated.
    expect(lastOf(warmup).effects).toEqual([{ kind: 'state_change', from: 'INITIALIZING', to: 'NORMAL', time: T0 + n * 10 * SEC }])
    expect(lastOf(warmup).state.operationalState).toBe('NORMAL')
    const first = lastOf(results)
    expect(first.classification).toBe('ALERT')
    expect(kinds(first)).toEqual(['open_alert', 'notify', 'state_change'])
  })

  it('does not count consecutive violations or clean readings during warm-up', () => {
    const rules = sensorRules({ minReadingsForNormal: 2, thresholds: [threshold({ id: 1, min: 100, consecutiveReadings: 2 })] })
    const results = runSequence(rules, initialRuleState(), series([150, 150, 150, 150], T0))
    expect(results.map((r) => r.classification)).toEqual(['ML_PREDICTION', 'ML_PREDICTION', 'ML_PREDICTION', 'ALERT'])
    expect(codes(results[2]!)).toEqual(['THRESHOLD_PENDING'])
    expect(results[1]!.state.consecutive).toEqual({})
    expect(results[1]!.state.cleanStreak).toBe(0)
  })

  it('counts warm-up readings as seen and tracks the previous value', () => {
    const results = runSequence(alerting({ minReadingsForNormal: 3 }), initialRuleState(), series([1, 2], T0))
    expect(lastOf(results).state).toMatchObject({ validReadingsCount: 2, readingsSeen: 2, prevValue: 2, prevTime: T0 + 20 * SEC, operationalState: 'INITIALIZING' })
  })

  it('evaluates the very first reading when min_readings_for_normal is 0', () => {
    const time = T0 + SEC
    const result = evaluateReading(alerting({ minReadingsForNormal: 0 }), initialRuleState(), { value: 150, time }, LIVE)
    expect(result.classification).toBe('ALERT')
    expect(result.effects).toEqual([
      { kind: 'state_change', from: 'INITIALIZING', to: 'NORMAL', time },
      expect.objectContaining({ kind: 'open_alert' }),
      expect.objectContaining({ kind: 'notify' }),
      { kind: 'state_change', from: 'NORMAL', to: 'ALERT', time },
    ])
  })
})

describe('stale sensors', () => {
  const staleState = normalState({ consecutive: { '1': 1 }, cleanStreak: 2, readingsSeen: 40, validReadingsCount: 10 })

  it.each<[string, number, boolean]>([
    ['exactly STALE_AFTER after the previous reading', 2 * HOUR, false],
    ['1 ms past STALE_AFTER', 2 * HOUR + 1, true],
    ['a day later', 24 * HOUR, true],
  ])('%s (gap %d ms) -> restarts warm-up=%s', (_label, gap, restarts) => {
    const time = T0 + gap
    const result = evaluateReading(alerting(), staleState, { value: 150, time }, LIVE)
    if (restarts) {
      expect(result.classification).toBe('ML_PREDICTION')
      expect(result.effects).toEqual([{ kind: 'state_change', from: 'STALE', to: 'INITIALIZING', time }])
      expect(result.reasons).toEqual([
        { code: 'STALE_RESTART', dt: gap / SEC, previous: 20 },
        { code: 'WARMUP', count: 1, required: 10 },
      ])
      expect(result.state).toMatchObject({ operationalState: 'INITIALIZING', validReadingsCount: 1, readingsSeen: 1, consecutive: {}, cleanStreak: 0, stateChangedAt: time })
    } else {
      expect(result.classification).toBe('ALERT')
      expect(result.state.readingsSeen).toBe(41)
    }
  })

  it('uses the configured STALE_AFTER', () => {
    const result = evaluateReading(alerting(), staleState, { value: 150, time: T0 + 61 * SEC }, { ...LIVE, staleAfterMs: 60 * SEC })
    expect(codes(result)).toEqual(['STALE_RESTART', 'WARMUP'])
  })

  it('restarts warm-up for a sensor stored as STALE', () => {
    const result = evaluateReading(alerting(), normalState({ operationalState: 'STALE' }), { value: 150, time: T0 + SEC }, LIVE)
    expect(codes(result)).toEqual(['STALE_RESTART', 'WARMUP'])
    expect(result.state.operationalState).toBe('INITIALIZING')
  })

  it('evaluates the restarting reading itself when there is no warm-up', () => {
    const time = T0 + 3 * HOUR
    const result = evaluateReading(alerting({ minReadingsForNormal: 0 }), staleState, { value: 150, time }, LIVE)
    expect(result.classification).toBe('ALERT')
    expect(result.effects.filter((e) => e.kind === 'state_change')).toEqual([
      { kind: 'state_change', from: 'STALE', to: 'INITIALIZING', time },
      { kind: 'state_change', from: 'INITIALIZING', to: 'NORMAL', time },
      { kind: 'state_change', from: 'NORMAL', to: 'ALERT', time },
    ])
  })

  it('keeps an alert that was active when the sensor went stale', () => {
    const state = normalState({ operationalState: 'ALERT', activeAlert: { severity: 'critical', thresholdId: 1 } })
    const result = evaluateReading(alerting(), state, { value: 50, time: T0 + 3 * HOUR }, LIVE)
    expect(result.state.activeAlert).toEqual({ severity: 'critical', thresholdId: 1 })
    expect(kinds(result)).toEqual(['state_change'])
  })
})

describe('auto-resolve after clean readings', () => {
  const active: RuleState = normalState({
    operationalState: 'WARNING',
    activeAlert: { severity: 'warning', thresholdId: 1 },
    activeDeltaSpike: true,
    lastAlertNotificationAt: T0,
  })

  it.each([1, 3, 5])('with resolve_after_readings %d, resolves on exactly that clean reading', (n) => {
    const results = runSequence(alerting({ resolveAfterReadings: n }), active, series(Array.from({ length: n + 1 }, () => 50), T0))
    results.slice(0, n - 1).forEach((r) => expect(r.effects).toEqual([]))
    const time = T0 + n * 10 * SEC
    expect(results[n - 1]!.effects).toEqual([
      { kind: 'resolve_alert', time, reason: 'auto_resolved' },
      { kind: 'resolve_delta_spike', time },
      { kind: 'state_change', from: 'WARNING', to: 'NORMAL', time },
    ])
    expect(results[n - 1]!.state).toMatchObject({ activeAlert: null, activeDeltaSpike: false, operationalState: 'NORMAL', cleanStreak: n })
    expect(lastOf(results).effects).toEqual([])
    expect(results.map((r) => codes(r))).toEqual(results.map(() => ['CLEAN']))
  })

  it('resolves only the delta spike when no alert is active', () => {
    const state = normalState({ operationalState: 'WARNING', activeDeltaSpike: true, cleanStreak: 2 })
    const result = evaluateReading(alerting({ resolveAfterReadings: 3 }), state, { value: 50, time: T0 + SEC }, LIVE)
    expect(kinds(result)).toEqual(['resolve_delta_spike', 'state_change'])
  })

  it('never resolves when resolve_after_readings is 0', () => {
    const results = runSequence(alerting({ resolveAfterReadings: 0 }), active, series(Array.from({ length: 20 }, () => 50), T0))
    expect(results.flatMap((r) => r.effects)).toEqual([])
    expect(lastOf(results).state).toMatchObject({ activeAlert: { severity: 'warning', thresholdId: 1 }, activeDeltaSpike: true, operationalState: 'WARNING', cleanStreak: 20 })
  })

  it('restarts the count after a violation', () => {
    const results = runSequence(alerting({ resolveAfterReadings: 3 }), active, series([50, 50, 150, 50, 50, 50], T0))
    expect(results.map((r) => r.state.cleanStreak)).toEqual([1, 2, 0, 1, 2, 3])
    expect(results.map((r) => r.effects.some((e) => e.kind === 'resolve_alert' && e.reason === 'auto_resolved'))).toEqual([false, false, false, false, false, true])
  })
})

describe('late readings', () => {
  const rules = sensorRules({ thresholds: [threshold({ id: 1, min: 100 })], delta: deltaRule({ absDelta: 1 }) })
  const late = (state: RuleState, value: number, rulesUsed: SensorRules = rules): ReturnType<typeof evaluateReading> =>
    evaluateReading(rulesUsed, deepFreeze(structuredClone(state)), { value, time: (state.prevTime ?? T0) - 10 * SEC }, LIVE)

  it('skips the delta check and moves nothing: previous reading, readings seen, clean streak', () => {
    const state = normalState({ prevValue: 20, cleanStreak: 1 })
    const result = late(state, 50)
    expect(result.classification).toBe('ML_PREDICTION')
    expect(codes(result)).toEqual(['LATE_READING', 'CLEAN'])
    expect(result.effects).toEqual([])
    expect(result.state).toStrictEqual(state)
  })

  it('is classified ALERT on a threshold it breaks, but opens no alert, notifies nobody and moves no state', () => {
    const state = normalState()
    const result = late(state, 150)
    expect(result.classification).toBe('ALERT')
    expect(result.reasons).toEqual([{ code: 'LATE_READING' }, { code: 'THRESHOLD', rule: 'greater_than', thresholdId: 1, observed: 150, limit: 100, severity: 'critical' }])
    expect(result.effects).toEqual([])
    expect(result.state).toStrictEqual(state)
  })

  it('does not escalate, update or renotify a newer active alert', () => {
    const twoLevels = sensorRules({ thresholds: [threshold({ id: 1, min: 100, severity: 'warning' }), threshold({ id: 2, min: 200, severity: 'critical' })] })
    const state = normalState({ operationalState: 'WARNING', activeAlert: { severity: 'warning', thresholdId: 1 }, lastAlertNotificationAt: T0 - HOUR, consecutive: { '1': 4 } })
    for (const value of [150, 250]) {
      const result = late(state, value, twoLevels)
      expect(result.classification).toBe('ALERT')
      expect(result.effects).toEqual([])
      expect(result.state).toStrictEqual(state)
    }
  })

  it('is judged alone: a violation is the first in a row, so a "2 in a row" threshold is pending', () => {
    const twoInARow = sensorRules({ thresholds: [threshold({ id: 1, min: 100, consecutiveReadings: 2 })] })
    const state = normalState({ consecutive: { '1': 1 } })
    const result = late(state, 150, twoInARow)
    expect(result.classification).toBe('ML_PREDICTION')
    expect(result.reasons).toEqual([{ code: 'LATE_READING' }, { code: 'THRESHOLD_PENDING', rule: 'greater_than', thresholdId: 1, observed: 150, severity: 'critical', count: 1, required: 2 }])
    expect(result.state).toStrictEqual(state)
  })

  it('does not complete a "2 in a row" that never happened in time order', () => {
    const twoInARow = sensorRules({ thresholds: [threshold({ id: 1, min: 100, consecutiveReadings: 2 })] })
    // In time order: 150 (T0-10 s, arrives late), 20 (T0, already evaluated), 150 (T0+10 s): never two in a row.
    const results = runSequence(twoInARow, normalState(), [
      { value: 150, time: T0 - 10 * SEC },
      { value: 150, time: T0 + 10 * SEC },
    ])
    expect(results.map((r) => r.classification)).toEqual(['ML_PREDICTION', 'ML_PREDICTION'])
    expect(results.flatMap((r) => r.effects)).toEqual([])
    expect(codes(lastOf(results))).toEqual(['THRESHOLD_PENDING'])
    expect(lastOf(results).reasons[0]).toMatchObject({ count: 1, required: 2 })
  })

  it('three old clean readings do not resolve a newer alert', () => {
    const active = normalState({ operationalState: 'ALERT', activeAlert: { severity: 'critical', thresholdId: 1 }, activeDeltaSpike: true, lastAlertNotificationAt: T0 })
    const results = runSequence(sensorRules({ thresholds: [threshold({ id: 1, min: 100 })], resolveAfterReadings: 3 }), active, [
      { value: 50, time: T0 - 30 * SEC },
      { value: 50, time: T0 - 20 * SEC },
      { value: 50, time: T0 - 10 * SEC },
    ])
    expect(results.flatMap((r) => r.effects)).toEqual([])
    expect(lastOf(results).state).toStrictEqual(active)
    expect(results.map(codes)).toEqual(results.map(() => ['LATE_READING', 'CLEAN']))
  })

  it('during warm-up is ML_PREDICTION and does not count toward warm-up', () => {
    const warming: RuleState = { ...initialRuleState(), validReadingsCount: 4, readingsSeen: 4, prevValue: 20, prevTime: T0 }
    const result = late(warming, 150, sensorRules({ thresholds: [threshold({ id: 1, min: 100 })], minReadingsForNormal: 5 }))
    expect(result.classification).toBe('ML_PREDICTION')
    expect(result.reasons).toEqual([{ code: 'LATE_READING' }, { code: 'WARMUP', count: 4, required: 5 }])
    expect(result.effects).toEqual([])
    expect(result.state).toStrictEqual(warming)
  })

  it('on a state stored as STALE is a warm-up reading with a count of 0, and does not restart warm-up', () => {
    const stale = normalState({ operationalState: 'STALE', validReadingsCount: 10 })
    const result = late(stale, 150)
    expect(result.reasons).toEqual([{ code: 'LATE_READING' }, { code: 'WARMUP', count: 0, required: 10 }])
    expect(result.effects).toEqual([])
    expect(result.state).toStrictEqual(stale)
  })

  it('is never a WARNING: no delta is measured against the later previous reading', () => {
    const result = late(normalState({ prevValue: 20 }), 90)
    expect(result.classification).toBe('ML_PREDICTION')
    expect(codes(result)).toEqual(['LATE_READING', 'CLEAN'])
  })

  it('does not count as stale however late it is', () => {
    const result = evaluateReading(rules, normalState(), { value: 50, time: T0 - 30 * 24 * HOUR }, LIVE)
    expect(codes(result)).not.toContain('STALE_RESTART')
    expect(result.state).toStrictEqual(normalState())
  })

  it('compares the next reading with the last in-order one', () => {
    const results = runSequence(rules, normalState({ prevValue: 20 }), [
      { value: 50, time: T0 - 10 * SEC },
      { value: 20.5, time: T0 + 10 * SEC },
    ])
    // Against the late 50 this would be a spike; against 20 it is noise.
    expect(lastOf(results).classification).toBe('ML_PREDICTION')
  })

  it('in place, hands back the same state object untouched', () => {
    const state = normalState({ activeAlert: { severity: 'critical', thresholdId: 1 }, operationalState: 'ALERT', cleanStreak: 2 })
    const before = structuredClone(state)
    const result = evaluateReadingInPlace(rules, state, { value: 50, time: T0 - SEC }, LIVE)
    expect(result.state).toBe(state)
    expect(state).toStrictEqual(before)
    expect(result.effects).toEqual([])
  })
})

describe('a reading at the same time as the last evaluated one is not late', () => {
  it('counts toward "2 in a row" and opens the alert', () => {
    const twoInARow = sensorRules({ thresholds: [threshold({ id: 1, min: 100, consecutiveReadings: 2 })] })
    const result = evaluateReading(twoInARow, normalState({ consecutive: { '1': 1 } }), { value: 150, time: T0 }, LIVE)
    expect(result.classification).toBe('ALERT')
    expect(codes(result)).toEqual(['THRESHOLD'])
    expect(kinds(result)).toEqual(['open_alert', 'notify', 'state_change'])
  })

  it('counts toward the clean streak and resolves', () => {
    const state = normalState({ operationalState: 'ALERT', activeAlert: { severity: 'critical', thresholdId: 1 }, cleanStreak: 2 })
    const result = evaluateReading(alerting({ resolveAfterReadings: 3 }), state, { value: 50, time: T0 }, LIVE)
    expect(codes(result)).toEqual(['CLEAN'])
    expect(kinds(result)).toEqual(['resolve_alert', 'state_change'])
    expect(result.state).toMatchObject({ cleanStreak: 3, readingsSeen: 11, prevValue: 50, prevTime: T0 })
  })

  it('becomes the previous reading, with no slope over a zero dt', () => {
    const result = evaluateReading(sensorRules({ delta: deltaRule({ absDelta: 5, absSlope: 1 }) }), normalState({ prevValue: 20 }), { value: 30, time: T0 }, LIVE)
    expect(result.classification).toBe('WARNING')
    expect(result.reasons.map((r) => r.rule)).toEqual(['abs_delta'])
    expect(result.state).toMatchObject({ prevValue: 30, prevTime: T0 })
  })
})

describe('backfill', () => {
  const rules = sensorRules({ thresholds: [threshold({ id: 1, min: 100 })], delta: deltaRule({ absDelta: 5 }) })
  const cases: Array<[string, RuleState, number]> = [
    ['a threshold violation', normalState(), 150],
    ['a delta spike', normalState({ prevValue: 20 }), 40],
    ['a clean reading that would auto-resolve', normalState({ activeAlert: { severity: 'critical', thresholdId: 1 }, cleanStreak: 2, operationalState: 'ALERT' }), 50],
    ['a warm-up reading', initialRuleState(), 150],
    ['a stale restart', normalState(), 50],
  ]

  it.each(cases)('without --alerts, %s is classified as live but changes nothing', (label, state, value) => {
    const reading = { value, time: (state.prevTime ?? T0) + (label === 'a stale restart' ? 3 * HOUR : 10 * SEC) }
    const live = evaluateReading(rules, state, reading, LIVE)
    const backfill = evaluateReading(rules, state, reading, BACKFILL)
    // Precondition: live would have moved the state, so an unchanged state proves backfill held it back.
    expect(live.state).not.toEqual(state)
    expect(backfill.classification).toBe(live.classification)
    expect(backfill.reasons).toEqual(live.reasons)
    expect(backfill.effects).toEqual([])
    expect(backfill.state).toEqual(state)
  })

  it.each(cases)('with --alerts, %s behaves like live', (label, state, value) => {
    const reading = { value, time: (state.prevTime ?? T0) + (label === 'a stale restart' ? 3 * HOUR : 10 * SEC) }
    expect(evaluateReading(rules, state, reading, BACKFILL_ALERTS)).toEqual(evaluateReading(rules, state, reading, LIVE))
  })

  it('ignores `alerts` in live mode', () => {
    const options: EvaluateOptions = { ...LIVE, alerts: true }
    const reading = { value: 150, time: T0 + SEC }
    expect(evaluateReading(rules, normalState(), reading, options)).toEqual(evaluateReading(rules, normalState(), reading, LIVE))
  })
})

describe('negative zero', () => {
  it('stores -0 as 0 so the state survives its JSON row', () => {
    const rules = sensorRules({ minReadingsForNormal: 0, thresholds: [threshold({ id: 1, condition: 'equal_to', min: 0 })] })
    const result = evaluateReading(rules, normalState(), { value: -0, time: T0 + SEC }, LIVE)
    expect(Object.is(result.state.prevValue, 0)).toBe(true)
    expect(result.effects).toContainEqual(expect.objectContaining({ kind: 'open_alert', value: 0 }))
    expect(result.effects.every((e) => !('value' in e) || Object.is(e.value, 0))).toBe(true)
    expect(Object.is(result.reasons[0]?.observed, 0)).toBe(true)
  })
})

describe('immutability', () => {
  const rules = sensorRules({
    minReadingsForNormal: 2,
    thresholds: [threshold({ id: 1, min: 100, consecutiveReadings: 2 }), threshold({ id: 2, min: 200, severity: 'warning' })],
    delta: deltaRule({ absDelta: 5 }),
  })
  it.each<[string, RuleState, number, number]>([
    ['warm-up', initialRuleState(), 150, T0],
    ['stale restart', normalState(), 50, T0 + 5 * HOUR],
    ['pending threshold', normalState({ consecutive: { '2': 3 } }), 150, T0 + SEC],
    ['alert open', normalState({ consecutive: { '1': 1 } }), 150, T0 + SEC],
    ['escalation', normalState({ activeAlert: { severity: 'warning', thresholdId: 2 }, consecutive: { '1': 1 } }), 250, T0 + SEC],
    ['delta spike', normalState({ prevValue: 20 }), 40, T0 + SEC],
    ['auto-resolve', normalState({ activeAlert: { severity: 'critical', thresholdId: 1 }, activeDeltaSpike: true, cleanStreak: 5 }), 20, T0 + SEC],
    ['late reading', normalState(), 20, T0 - SEC],
  ])('never mutates the input state (%s)', (_label, state, value, time) => {
    const snapshot = structuredClone(state)
    deepFreeze(state)
    for (const options of [LIVE, BACKFILL, BACKFILL_ALERTS]) {
      const result = evaluateReading(rules, state, { value, time }, options)
      expect(result.state).not.toBe(state)
      expect(result.state.consecutive).not.toBe(state.consecutive)
    }
    expect(state).toEqual(snapshot)
  })
})
