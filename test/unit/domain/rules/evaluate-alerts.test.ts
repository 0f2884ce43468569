import { describe, expect, it } from 'vitest'
import { evaluateReading } from '../../../../src/lib/domain/rules/index.js'
import type { OperationalState, RuleState, Severity } from '../../../../src/lib/domain/rules/index.js'
import { LIVE, MIN, SEC, T0, kinds, normalState, runSequence, sensorRules, threshold } from './rules-fixtures.js'

const hardLimits = threshold({ id: 4, name: 'hard-limits', condition: 'out_of_range', min: 0, max: 90, severity: 'critical' })
const comfort = threshold({ id: 5, name: 'comfort', condition: 'out_of_range', min: 20, max: 70, severity: 'warning' })
const rules = sensorRules({ thresholds: [hardLimits, comfort] })

function activeState(severity: Severity, extra: Partial<RuleState> = {}): RuleState {
  return normalState({
    operationalState: severity === 'critical' ? 'ALERT' : 'WARNING',
    activeAlert: { severity, thresholdId: severity === 'critical' ? 4 : 5 },
    lastAlertNotificationAt: T0,
    ...extra,
  })
}

describe('opening an alert', () => {
  it.each<[Severity, number, OperationalState]>([
    ['critical', 95, 'ALERT'],
    ['warning', 80, 'WARNING'],
  ])('a %s violation with no active alert opens one and notifies', (severity, value, sensorState) => {
    const time = T0 + 10 * SEC
    const result = evaluateReading(rules, normalState(), { value, time }, LIVE)
    const thresholdId = severity === 'critical' ? 4 : 5
    const name = severity === 'critical' ? 'hard-limits' : 'comfort'
    const bounds = severity === 'critical' ? '[0, 90]' : '[20, 70]'
    expect(result.classification).toBe('ALERT')
    expect(result.effects).toEqual([
      { kind: 'open_alert', severity, thresholdId, value, time },
      { kind: 'notify', source: 'alert', severity, value, time, title: `ALERT ${severity}: sensor 7`, message: `value ${value} violates ${name} ${bounds}` },
      { kind: 'state_change', from: 'NORMAL', to: sensorState, time },
    ])
    expect(result.state.activeAlert).toEqual({ severity, thresholdId })
    expect(result.state.lastAlertNotificationAt).toBe(time)
    expect(result.state.operationalState).toBe(sensorState)
    expect(result.state.stateChangedAt).toBe(time)
  })

  it('puts the sensor in WARNING for an info alert', () => {
    const info = sensorRules({ thresholds: [threshold({ id: 1, severity: 'info', min: 10 })] })
    const result = evaluateReading(info, normalState(), { value: 11, time: T0 + SEC }, LIVE)
    expect(result.state.operationalState).toBe('WARNING')
    expect(result.effects).toContainEqual({ kind: 'open_alert', severity: 'info', thresholdId: 1, value: 11, time: T0 + SEC })
  })

  it('writes open-ended bounds as -inf/inf in the message', () => {
    const open = sensorRules({ thresholds: [threshold({ id: 1, min: 100, max: null })] })
    const result = evaluateReading(open, normalState(), { value: 101.5, time: T0 + SEC }, LIVE)
    expect(result.effects).toContainEqual(expect.objectContaining({ kind: 'notify', message: 'value 101.5 violates greater_than [100, inf]' }))
  })
})

describe('an active alert of the same severity', () => {
  it.each<[string, number, boolean]>([
    ['1 min after the last notification', 1 * MIN, false],
    ['4 min 59.999 s after', 5 * MIN - 1, false],
    ['exactly 5 min after', 5 * MIN, true],
    ['an hour after', 60 * MIN, true],
  ])('%s (%d ms): updates in place, notifies=%s', (_label, elapsed, notifies) => {
    const time = T0 + elapsed
    const result = evaluateReading(rules, activeState('critical'), { value: 99, time }, LIVE)
    expect(result.classification).toBe('ALERT')
    const expected: unknown[] = [{ kind: 'update_alert', severity: 'critical', thresholdId: 4, value: 99, time }]
    if (notifies) expected.push(expect.objectContaining({ kind: 'notify', source: 'alert', severity: 'critical', value: 99, time }))
    expect(result.effects).toEqual(expected)
    expect(result.state.lastAlertNotificationAt).toBe(notifies ? time : T0)
  })

  it('notifies at most once per 5 min over a stream of repeats', () => {
    const readings = Array.from({ length: 13 }, (_, i) => ({ value: 95, time: T0 + (i + 1) * MIN }))
    const results = runSequence(rules, activeState('critical'), readings)
    const notifiedAt = results.flatMap((r) => r.effects).filter((e) => e.kind === 'notify').map((e) => (e.time - T0) / MIN)
    expect(notifiedAt).toEqual([5, 10])
  })

  it('honours a configured renotify interval', () => {
    const result = evaluateReading(rules, activeState('critical'), { value: 95, time: T0 + MIN }, { ...LIVE, alertRenotifyMs: 30 * SEC })
    expect(kinds(result)).toEqual(['update_alert', 'notify'])
  })

  it('moves the alert to the threshold that fired now', () => {
    const other = threshold({ id: 2, min: 95, severity: 'critical' })
    const withOther = sensorRules({ thresholds: [other, hardLimits] })
    const result = evaluateReading(withOther, activeState('critical'), { value: 96, time: T0 + MIN }, LIVE)
    expect(result.effects).toEqual([{ kind: 'update_alert', severity: 'critical', thresholdId: 2, value: 96, time: T0 + MIN }])
    expect(result.state.activeAlert).toEqual({ severity: 'critical', thresholdId: 2 })
  })
})

describe('escalation and lower severities', () => {
  it('resolves a warning alert and opens a critical one, in that order, when critical fires', () => {
    const time = T0 + MIN
    const result = evaluateReading(rules, activeState('warning'), { value: 95, time }, LIVE)
    expect(result.effects).toEqual([
      { kind: 'resolve_alert', time, reason: 'escalated' },
      { kind: 'open_alert', severity: 'critical', thresholdId: 4, value: 95, time },
      expect.objectContaining({ kind: 'notify', source: 'alert', severity: 'critical', time }),
      { kind: 'state_change', from: 'WARNING', to: 'ALERT', time },
    ])
    expect(result.state.activeAlert).toEqual({ severity: 'critical', thresholdId: 4 })
    expect(result.state.lastAlertNotificationAt).toBe(time)
  })

  it('escalates along a sequence: warning opens, warning repeats, critical resolves and reopens', () => {
    const results = runSequence(rules, normalState(), [
      { value: 75, time: T0 + 10 * SEC },
      { value: 78, time: T0 + 20 * SEC },
      { value: 91, time: T0 + 30 * SEC },
    ])
    expect(results.map(kinds)).toEqual([
      ['open_alert', 'notify', 'state_change'],
      ['update_alert'],
      ['resolve_alert', 'open_alert', 'notify', 'state_change'],
    ])
    expect(results.map((r) => r.state.operationalState)).toEqual(['WARNING', 'WARNING', 'ALERT'])
  })

  it('leaves an active critical alert untouched when only a warning fires', () => {
    const state = activeState('critical', { cleanStreak: 1 })
    const result = evaluateReading(rules, state, { value: 80, time: T0 + 10 * MIN }, LIVE)
    expect(result.classification).toBe('ALERT')
    expect(result.effects).toEqual([])
    expect(result.reasons).toMatchObject([{ code: 'THRESHOLD', thresholdId: 5, severity: 'warning' }])
    expect(result.state.activeAlert).toEqual({ severity: 'critical', thresholdId: 4 })
    expect(result.state.operationalState).toBe('ALERT')
    expect(result.state.lastAlertNotificationAt).toBe(T0)
    expect(result.state.cleanStreak).toBe(0)
  })

  it('leaves an active warning alert untouched when only an info threshold fires', () => {
    const info = threshold({ id: 6, min: 60, severity: 'info' })
    const result = evaluateReading(sensorRules({ thresholds: [info] }), activeState('warning'), { value: 65, time: T0 + MIN }, LIVE)
    expect(result.classification).toBe('ALERT')
    expect(result.effects).toEqual([])
    expect(result.state.activeAlert).toEqual({ severity: 'warning', thresholdId: 5 })
  })
})
