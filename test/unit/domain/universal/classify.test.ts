import { describe, expect, it } from 'vitest'
import { classifyPoints, initialStreamRuleState } from '../../../../src/lib/domain/universal/index.js'
import type { StreamRuleState } from '../../../../src/lib/domain/universal/index.js'
import { LIVE, SEC, T0, bpmConfig, configWith, points } from './fixtures.js'

const kinds = (r: ReturnType<typeof classifyPoints>): string[][] => r.outcomes.map((o) => o.alertActions.map((a) => (a.kind === 'resolve' ? `resolve:${a.reason}` : `${a.kind}:${a.severity}`)))

describe('delta anomalies', () => {
  const abs = configWith({ maxAbsDelta: 10 })
  it('flags |v - previous| > max_abs_delta against the previous value, with the reason and original text', () => {
    const r = classifyPoints(abs, initialStreamRuleState(), points([100, 105, 116, 126]), LIVE)
    expect(r.outcomes.map((o) => o.classification)).toEqual(['normal', 'normal', 'anomaly_detected', 'normal'])
    expect(r.outcomes[2]?.reasons).toEqual([{ code: 'ABS_DELTA', rule: 'max_abs_delta', observed: 116, limit: 10, previous: 105, delta: 11, dt: 1 }])
    expect(r.outcomes[2]?.message).toBe('Absolute delta 11.00 exceeds threshold 10')
    // exactly the limit is not above it
    expect(r.outcomes[3]?.classification).toBe('normal')
  })

  it('flags a relative change above max_rel_delta percent, skipped when the previous value is 0', () => {
    const price = configWith({ maxRelDelta: 10 })
    const r = classifyPoints(price, initialStreamRuleState(), points([100, 109, 121, 0, 5]), LIVE)
    expect(r.outcomes.map((o) => o.classification)).toEqual(['normal', 'normal', 'anomaly_detected', 'anomaly_detected', 'normal'])
    const reason = r.outcomes[2]?.reasons[0]
    expect(reason?.code).toBe('REL_DELTA')
    expect(reason?.deltaPercent).toBeCloseTo((12 / 109) * 100, 10)
    expect(r.outcomes[2]?.message).toBe(`Relative delta ${((12 / 109) * 100).toFixed(2)}% exceeds threshold 10%`)
  })

  it('ignores changes below noise_abs_threshold', () => {
    const r = classifyPoints(configWith({ maxAbsDelta: 1, noiseAbsThreshold: 5 }), initialStreamRuleState(), points([10, 14, 20]), LIVE)
    expect(r.outcomes.map((o) => o.classification)).toEqual(['normal', 'normal', 'anomaly_detected'])
  })

  it('does not move the previous value on a range violation, so the return from it is no anomaly', () => {
    const r = classifyPoints(configWith({ maxAbsDelta: 10, warningMax: 50 }), initialStreamRuleState(), points([40, 80, 41]), LIVE)
    expect(r.outcomes.map((o) => o.classification)).toEqual(['normal', 'warning_violation', 'normal'])
    expect(r.state.prevValue).toBe(41)
  })

  it('opens no alert for an anomaly', () => {
    const r = classifyPoints(configWith({ maxAbsDelta: 1 }), initialStreamRuleState(), points([1, 50]), LIVE)
    expect(r.outcomes[1]?.alertActions).toEqual([])
  })
})

describe('consecutive_violations_required', () => {
  const cfg = bpmConfig({ consecutiveViolationsRequired: 3 })
  it('opens an alert only at the Nth violation in a row, the earlier ones pending', () => {
    const r = classifyPoints(cfg, initialStreamRuleState(), points([170, 170, 170]), LIVE)
    expect(r.outcomes.map((o) => o.classification)).toEqual(['warning_violation', 'warning_violation', 'warning_violation'])
    expect(r.outcomes[0]?.reasons[1]).toEqual({ code: 'VIOLATION_PENDING', count: 1, required: 3 })
    expect(r.outcomes[1]?.reasons[1]).toEqual({ code: 'VIOLATION_PENDING', count: 2, required: 3 })
    expect(kinds(r)).toEqual([[], [], ['open:WARNING']])
  })

  it('restarts the count after a normal point, and carries it across batches in the state', () => {
    const r1 = classifyPoints(cfg, initialStreamRuleState(), points([170, 170, 100, 170]), LIVE)
    expect(kinds(r1)).toEqual([[], [], [], []])
    expect(r1.state.consecutiveViolations).toBe(1)
    const r2 = classifyPoints(cfg, r1.state, points([170, 170], SEC, T0 + 10 * SEC), LIVE)
    expect(kinds(r2)).toEqual([[], ['open:WARNING']])
  })

  it('counts warning and critical violations together; the alert takes the severity of the point that reaches N', () => {
    const r = classifyPoints(cfg, initialStreamRuleState(), points([170, 170, 210]), LIVE)
    expect(kinds(r)).toEqual([[], [], ['open:CRITICAL']])
  })
})

describe('one active alert per series', () => {
  it('updates the same severity in place', () => {
    const r = classifyPoints(bpmConfig(), initialStreamRuleState(), points([170, 175]), LIVE)
    expect(kinds(r)).toEqual([['open:WARNING'], ['update:WARNING']])
    expect(r.alertPlan.inserts).toHaveLength(1)
    expect(r.alertPlan.inserts[0]).toMatchObject({ severity: 'WARNING', value: 175, thresholdViolated: 'warning_max', isActive: true })
  })

  it('escalates to a higher severity: resolves the warning and opens a critical one', () => {
    const r = classifyPoints(bpmConfig({ cooldownSeconds: 0 }), initialStreamRuleState(), points([170, 210]), LIVE)
    expect(kinds(r)).toEqual([['open:WARNING'], ['resolve:escalated', 'open:CRITICAL']])
    expect(r.alertPlan.inserts.map((i) => [i.severity, i.isActive, i.resolutionReason, i.resolvedAt])).toEqual([
      ['WARNING', false, 'escalated', T0 + SEC],
      ['CRITICAL', true, null, null],
    ])
  })

  it('leaves a critical alert alone on a lower severity', () => {
    const r = classifyPoints(bpmConfig(), initialStreamRuleState(), points([210, 170, 190]), LIVE)
    expect(kinds(r)).toEqual([['open:CRITICAL'], [], []])
    expect(r.state.activeAlert?.severity).toBe('CRITICAL')
  })

  it('plans changes to the alert active before the batch as an update of the existing row', () => {
    const before: StreamRuleState = { ...initialStreamRuleState(), lastTime: T0 - SEC, activeAlert: { severity: 'WARNING', openedAt: T0 - 3600 * SEC }, lastAlertAt: T0 - 3600 * SEC }
    const r = classifyPoints(bpmConfig(), before, points([172, 210]), LIVE)
    expect(kinds(r)).toEqual([['update:WARNING'], ['resolve:escalated', 'open:CRITICAL']])
    expect(r.alertPlan.existing).toEqual({
      update: { severity: 'WARNING', value: 172, thresholdViolated: 'warning_max', message: 'Value 172 in warning zone (above 160)', time: T0 },
      resolve: { time: T0 + SEC, reason: 'escalated' },
    })
    expect(r.alertPlan.inserts.map((i) => i.severity)).toEqual(['CRITICAL'])
  })

  it('resolves the active alert after 3 normal points in a row (auto_resolved); anomalies break the streak', () => {
    const cfg = bpmConfig({ maxAbsDelta: 30 })
    const r = classifyPoints(cfg, initialStreamRuleState(), points([170, 100, 100, 140, 100, 100, 100]), LIVE)
    expect(r.outcomes.map((o) => o.classification)).toEqual(['warning_violation', 'normal', 'normal', 'anomaly_detected', 'anomaly_detected', 'normal', 'normal'])
    expect(kinds(r)).toEqual([['open:WARNING'], [], [], [], [], [], []])
    const r2 = classifyPoints(cfg, r.state, points([100], SEC, T0 + 10 * SEC), LIVE)
    expect(kinds(r2)).toEqual([['resolve:auto_resolved']])
    expect(r2.state.activeAlert).toBeNull()
    expect(r2.alertPlan).toEqual({ existing: { update: null, resolve: { time: T0 + 10 * SEC, reason: 'auto_resolved' } }, inserts: [] })
  })

  it('resolveAfterPoints 0 never resolves', () => {
    const r = classifyPoints(bpmConfig(), initialStreamRuleState(), points([170, 100, 100, 100, 100]), { ...LIVE, resolveAfterPoints: 0 })
    expect(r.state.activeAlert?.severity).toBe('WARNING')
  })

  it('does nothing to alerts when the stream has alerting disabled, but still moves the state', () => {
    const r = classifyPoints(bpmConfig({}, { enableAlerting: false }), initialStreamRuleState(), points([210, 170]), LIVE)
    expect(kinds(r)).toEqual([[], []])
    expect(r.stateChanged).toBe(true)
    expect(r.state.consecutiveViolations).toBe(2)
  })
})

describe('cooldown_seconds (data time)', () => {
  const cfg = bpmConfig({ cooldownSeconds: 300 })
  it('opens no new alert within the cooldown after the last one was resolved, and opens once it has passed', () => {
    // open at T0, resolved by 3 normal points, a violation at 200 s is inside the cooldown, one at 300 s is not
    const r = classifyPoints(cfg, initialStreamRuleState(), [
      { value: 170, time: T0 },
      { value: 100, time: T0 + 10 * SEC },
      { value: 100, time: T0 + 20 * SEC },
      { value: 100, time: T0 + 30 * SEC },
      { value: 170, time: T0 + 200 * SEC },
      { value: 170, time: T0 + 300 * SEC },
    ], LIVE)
    expect(kinds(r)).toEqual([['open:WARNING'], [], [], ['resolve:auto_resolved'], [], ['open:WARNING']])
    expect(r.outcomes[4]?.reasons).toContainEqual({ code: 'ALERT_COOLDOWN' })
    expect(r.alertPlan.inserts.map((i) => [i.triggeredAt, i.isActive])).toEqual([[T0, false], [T0 + 300 * SEC, true]])
  })

  it('escalates in place (no new row) inside the cooldown, and with a new row after it', () => {
    const r = classifyPoints(cfg, initialStreamRuleState(), [
      { value: 170, time: T0 },
      { value: 210, time: T0 + 299 * SEC },
    ], LIVE)
    expect(kinds(r)).toEqual([['open:WARNING'], ['update:CRITICAL']])
    expect(r.outcomes[1]?.reasons).toContainEqual({ code: 'ALERT_COOLDOWN' })
    expect(r.alertPlan.inserts).toHaveLength(1)
    expect(r.alertPlan.inserts[0]).toMatchObject({ severity: 'CRITICAL', value: 210, triggeredAt: T0, isActive: true })
    const later = classifyPoints(cfg, initialStreamRuleState(), [
      { value: 170, time: T0 },
      { value: 210, time: T0 + 300 * SEC },
    ], LIVE)
    expect(kinds(later)).toEqual([['open:WARNING'], ['resolve:escalated', 'open:CRITICAL']])
  })
})

describe('late points', () => {
  const moved: StreamRuleState = {
    ...initialStreamRuleState(),
    lastTime: T0 + 100 * SEC,
    prevValue: 100,
    prevTime: T0 + 100 * SEC,
    consecutiveViolations: 1,
    activeAlert: { severity: 'WARNING', openedAt: T0 },
    lastAlertAt: T0,
  }

  it('stores a late point with its class and LATE_POINT, moves no state and touches no alert', () => {
    const r = classifyPoints(bpmConfig({ maxAbsDelta: 5 }), moved, points([210, 170, 55, 25], SEC, T0 + 10 * SEC), LIVE)
    expect(r.outcomes.map((o) => [o.classification, o.stored, o.late])).toEqual([
      ['critical_violation', true, true],
      ['warning_violation', true, true],
      ['normal', true, true],
      ['rejected', false, true],
    ])
    expect(r.outcomes[0]?.reasons).toEqual([{ code: 'LATE_POINT' }, { code: 'CRITICAL_ZONE', rule: 'critical_max', observed: 210, limit: 200 }])
    // 55 is 45 away from the (later) previous value 100 but a late point is never an anomaly
    expect(r.outcomes[2]?.reasons).toEqual([{ code: 'LATE_POINT' }, { code: 'NORMAL' }])
    expect(r.outcomes.flatMap((o) => o.alertActions)).toEqual([])
    expect(r.stateChanged).toBe(false)
    expect(r.state).toBe(moved)
    expect(r.alertPlan).toEqual({ existing: null, inserts: [] })
  })

  it('a point at exactly the last time is not late', () => {
    const r = classifyPoints(bpmConfig(), moved, [{ value: 170, time: T0 + 100 * SEC }], LIVE)
    expect(r.outcomes[0]?.late).toBe(false)
    expect(kinds(r)).toEqual([['update:WARNING']])
  })

  it('evaluates the points of one batch in time order whatever their input order, answering in input order', () => {
    const r = classifyPoints(bpmConfig({ maxAbsDelta: 20 }), initialStreamRuleState(), [
      { value: 140, time: T0 + 2 * SEC },
      { value: 100, time: T0 },
      { value: 110, time: T0 + SEC },
    ], LIVE)
    expect(r.outcomes.map((o) => [o.classification, o.late])).toEqual([['anomaly_detected', false], ['normal', false], ['normal', false]])
    expect(r.state.lastTime).toBe(T0 + 2 * SEC)
  })
})

describe('backfill', () => {
  it('without alerts: classified as live (deltas within the batch) but no state moves and no alert', () => {
    const cfg = bpmConfig({ maxAbsDelta: 20 })
    const state = initialStreamRuleState()
    const r = classifyPoints(cfg, state, points([100, 150, 210]), { mode: 'backfill', alerts: false })
    expect(r.outcomes.map((o) => o.classification)).toEqual(['normal', 'anomaly_detected', 'critical_violation'])
    expect(r.outcomes.flatMap((o) => o.alertActions)).toEqual([])
    expect(r.stateChanged).toBe(false)
    expect(r.state).toBe(state)
  })

  it('with alerts behaves like live', () => {
    const r = classifyPoints(bpmConfig(), initialStreamRuleState(), points([210]), { mode: 'backfill', alerts: true })
    expect(kinds(r)).toEqual([['open:CRITICAL']])
    expect(r.stateChanged).toBe(true)
  })
})

describe('rejections and no constraints', () => {
  it('rejects a non-finite value without moving state', () => {
    const state = initialStreamRuleState()
    const r = classifyPoints(bpmConfig(), state, [{ value: Number.NaN, time: T0 }], LIVE)
    expect(r.outcomes[0]).toMatchObject({ classification: 'rejected', stored: false, reasons: [{ code: 'VALUE_NOT_FINITE' }] })
    expect(r.stateChanged).toBe(false)
  })

  it('a physically impossible point moves nothing (it is not stored)', () => {
    const r = classifyPoints(bpmConfig(), initialStreamRuleState(), points([230]), LIVE)
    expect(r.stateChanged).toBe(false)
    expect(r.state.lastTime).toBeNull()
  })

  it('no constraints: normal with NO_CONSTRAINTS, and the state follows the points', () => {
    const cfg = { ...bpmConfig(), constraints: null }
    const r = classifyPoints(cfg, initialStreamRuleState(), points([1e9, -5]), LIVE)
    expect(r.outcomes.map((o) => [o.classification, o.message, o.reasons])).toEqual([
      ['normal', 'No constraints configured', [{ code: 'NO_CONSTRAINTS' }]],
      ['normal', 'No constraints configured', [{ code: 'NO_CONSTRAINTS' }]],
    ])
    expect(r.state).toMatchObject({ lastTime: T0 + SEC, prevValue: -5 })
  })

  it('never mutates the input state and returns JSON-round-trippable state', () => {
    const state = initialStreamRuleState()
    const copy = structuredClone(state)
    const r = classifyPoints(bpmConfig(), state, points([170, -0, 210]), { ...LIVE })
    expect(state).toEqual(copy)
    expect(JSON.parse(JSON.stringify(r.state))).toEqual(r.state)
  })
})
