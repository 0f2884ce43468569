import { describe, expect, it } from 'vitest'
import { evaluateReading, initialRuleState, measureDelta } from '../../../../src/lib/domain/rules/index.js'
import type { DeltaRule, Evaluation, RuleState, SensorRules } from '../../../../src/lib/domain/rules/index.js'
import { LIVE, SEC, T0, codes, deltaRule, kinds, lastOf, normalState, runSequence, sensorRules, series, threshold } from './rules-fixtures.js'

function withDelta(delta: Partial<DeltaRule>, extra: Partial<SensorRules> = {}): SensorRules {
  return sensorRules({ delta: deltaRule(delta), ...extra })
}

function evaluate(rules: SensorRules, state: RuleState, value: number, dtMs = 10 * SEC): Evaluation {
  return evaluateReading(rules, state, { value, time: (state.prevTime ?? T0) + dtMs }, LIVE)
}

function spiked(result: Evaluation): boolean {
  return result.effects.some((e) => e.kind === 'upsert_delta_spike')
}

describe('delta spike: a full spike', () => {
  it('writes the event, notifies and moves the sensor to WARNING', () => {
    const time = T0 + 2 * SEC
    const result = evaluateReading(withDelta({ absDelta: 5, relDelta: 0.5 }), normalState({ prevValue: 20 }), { value: 26, time }, LIVE)
    expect(result.classification).toBe('WARNING')
    expect(result.reasons).toEqual([{ code: 'DELTA_SPIKE', rule: 'abs_delta', observed: 6, limit: 5, previous: 20, dt: 2, severity: 'warning' }])
    expect(result.effects).toEqual([
      {
        kind: 'upsert_delta_spike',
        severity: 'warning',
        time,
        value: 26,
        title: 'Cambio significativo en valor',
        message: 'El valor subió 6.00 unidades desde 20.00',
        payload: { delta_abs: 6, delta_rel: 0.3, slope_abs: 3, slope_rel: 0.15, dt_seconds: 2, last_value: 20, triggered_thresholds: ['abs_delta'] },
      },
      { kind: 'notify', source: 'ml_event', severity: 'warning', value: 26, time, title: 'Cambio significativo en valor', message: 'El valor subió 6.00 unidades desde 20.00' },
      { kind: 'state_change', from: 'NORMAL', to: 'WARNING', time },
    ])
    expect(result.state).toMatchObject({ lastDeltaSpikeAt: time, activeDeltaSpike: true, cleanStreak: 0, operationalState: 'WARNING', prevValue: 26, prevTime: time })
  })

  it('gives one reason per delta threshold that fired', () => {
    const rules = withDelta({ absDelta: 5, relDelta: 0.2, absSlope: 2, relSlope: 0.1, severity: 'critical' })
    const result = evaluate(rules, normalState({ prevValue: 20 }), 26, 2 * SEC)
    expect(result.reasons.map((r) => [r.rule, r.observed, r.limit])).toEqual([
      ['abs_delta', 6, 5],
      ['rel_delta', 0.3, 0.2],
      ['abs_slope', 3, 2],
      ['rel_slope', 0.15, 0.1],
    ])
    expect(result.effects).toContainEqual(expect.objectContaining({ kind: 'upsert_delta_spike', severity: 'critical' }))
    expect(result.effects).toContainEqual(expect.objectContaining({ kind: 'notify', source: 'ml_event', severity: 'critical' }))
  })

  it.each<[string, Partial<DeltaRule>, string]>([
    ['critical severity', { absDelta: 5, severity: 'critical' }, 'Cambio crítico detectado'],
    ['abs_delta', { absDelta: 5 }, 'Cambio significativo en valor'],
    ['rel_delta', { relDelta: 0.2 }, 'Cambio significativo en valor'],
    ['abs and slope', { absDelta: 5, absSlope: 2 }, 'Cambio significativo en valor'],
    ['abs_slope only', { absSlope: 2 }, 'Cambio rápido detectado'],
    ['rel_slope only', { relSlope: 0.1, severity: 'info' }, 'Cambio rápido detectado'],
  ])('titles a %s spike (%j) "%s", the event and its notification alike', (_label, delta, title) => {
    const result = evaluate(withDelta(delta), normalState({ prevValue: 20 }), 26, 2 * SEC)
    expect(result.effects).toContainEqual(expect.objectContaining({ kind: 'upsert_delta_spike', title }))
    expect(result.effects).toContainEqual(expect.objectContaining({ kind: 'notify', title }))
  })

  it.each<[string, Partial<DeltaRule>, number, number, string]>([
    ['a rise', { absDelta: 5 }, 26, 2 * SEC, 'El valor subió 6.00 unidades desde 20.00'],
    ['a drop', { absDelta: 5 }, 14, 2 * SEC, 'El valor cambió 6.00 unidades desde 20.00'],
    ['a slope over 2 s', { absSlope: 2 }, 26, 2 * SEC, 'El valor subió 6.00 unidades desde 20.00. en 2 segundos'],
    ['a slope and a delta', { absDelta: 5, relSlope: 0.01 }, 26, 2.5 * SEC, 'El valor subió 6.00 unidades desde 20.00. en 2 segundos'],
    ['a slope over 3.5 s', { absSlope: 1 }, 26, 3.5 * SEC, 'El valor subió 6.00 unidades desde 20.00. en 4 segundos'],
    ['a delta at the same instant (no slope)', { absDelta: 5, absSlope: 1 }, 26, 0, 'El valor subió 6.00 unidades desde 20.00'],
    ['a half-way delta, rounded half to even', { absDelta: 0.1 }, 20.125, 2 * SEC, 'El valor subió 0.12 unidades desde 20.00'],
  ])('writes the message of %s as the legacy did (%j)', (_label, delta, value, dtMs, message) => {
    const result = evaluate(withDelta(delta), normalState({ prevValue: 20 }), value, dtMs)
    expect(result.effects).toContainEqual(expect.objectContaining({ kind: 'upsert_delta_spike', message }))
    expect(result.effects).toContainEqual(expect.objectContaining({ kind: 'notify', message }))
  })

  it('keeps the sensor in ALERT when a critical alert is active', () => {
    const state = normalState({ operationalState: 'ALERT', activeAlert: { severity: 'critical', thresholdId: 1 } })
    const result = evaluate(withDelta({ absDelta: 5 }), state, 30)
    expect(result.classification).toBe('WARNING')
    expect(kinds(result)).toEqual(['upsert_delta_spike', 'notify'])
    expect(result.state.operationalState).toBe('ALERT')
  })

  it('is not checked when a threshold fired', () => {
    const rules = withDelta({ absDelta: 1 }, { thresholds: [threshold({ id: 1, min: 100 })] })
    const result = evaluate(rules, normalState({ prevValue: 20 }), 150)
    expect(result.classification).toBe('ALERT')
    expect(spiked(result)).toBe(false)
    expect(codes(result)).toEqual(['THRESHOLD'])
  })

  it('is checked after a pending threshold and reports both', () => {
    const rules = withDelta({ absDelta: 1 }, { thresholds: [threshold({ id: 1, min: 100, consecutiveReadings: 2 })] })
    const result = evaluate(rules, normalState({ prevValue: 20 }), 150)
    expect(result.classification).toBe('WARNING')
    expect(codes(result)).toEqual(['THRESHOLD_PENDING', 'DELTA_SPIKE'])
  })

  it('does nothing without a delta rule', () => {
    const result = evaluate(sensorRules(), normalState({ prevValue: 20 }), 1000)
    expect(result.classification).toBe('ML_PREDICTION')
    expect(codes(result)).toEqual(['CLEAN'])
  })
})

describe('delta spike: noise floors per sensor type', () => {
  // absDelta 0 fires on anything that is not noise, so these cases isolate the floor.
  it.each<[string | null, number, number, boolean]>([
    ['temperature', 100, 100.49, false],
    ['temperature', 100, 100.5, true],
    ['temperature', 10, 10.3, true], // Δabs 0.3 under 0.5 but Δrel 3 % over 2 %
    [' Temperature ', 100, 100.49, false],
    ['humidity', 80, 81.9, false],
    ['humidity', 80, 82, true],
    ['air_quality', 1000, 1049, false],
    ['air_quality', 1000, 1050, true],
    ['voltage', 230, 230.9, false],
    ['voltage', 230, 231, true],
    ['power', 1000, 1009, false],
    ['power', 1000, 1010, true],
    ['pressure', 1000, 1000.4, false],
    ['pressure', 1000, 1000.5, true],
    ['flow', 50, 50.0625, false],
    ['flow', 50, 50.125, true],
    [null, 50, 50.0625, false],
    [null, 50, 49.875, true],
  ])('%j: %d -> %d spikes=%s', (sensorType, prev, value, fires) => {
    const result = evaluate(withDelta({ absDelta: 0 }, { sensorType }), normalState({ prevValue: prev }), value)
    expect(spiked(result)).toBe(fires)
    expect(result.classification).toBe(fires ? 'WARNING' : 'ML_PREDICTION')
  })
})

describe('delta spike: previous value near zero', () => {
  it.each<[number, boolean]>([
    [0, true],
    [5e-7, true],
    [-9.9e-7, true],
    [1e-6, false],
    [-1e-6, false],
  ])('previous %d -> relative delta skipped=%s', (prev, skipped) => {
    const measure = measureDelta(deltaRule({ absDelta: 0.15, relDelta: 0.01 }), null, { value: prev, time: T0 }, { value: prev + 0.2, time: T0 + 2 * SEC })
    expect(measure.deltaRel === null).toBe(skipped)
    expect(measure.slopeRel === null).toBe(skipped)
    expect(measure.triggered.includes('rel_delta')).toBe(!skipped)
  })

  it('treats a small step from zero as noise when only the absolute floor can judge it', () => {
    const result = evaluate(withDelta({ relDelta: 0.01, absDelta: 0.01 }), normalState({ prevValue: 0 }), 0.05)
    expect(result.classification).toBe('ML_PREDICTION')
  })

  it('fires on the absolute delta from zero and stores null relative values', () => {
    const result = evaluate(withDelta({ absDelta: 0.15, relDelta: 0.01 }), normalState({ prevValue: 0 }), 0.2, 4 * SEC)
    expect(result.effects).toContainEqual(
      expect.objectContaining({
        kind: 'upsert_delta_spike',
        payload: { delta_abs: 0.2, delta_rel: null, slope_abs: 0.05, slope_rel: null, dt_seconds: 4, last_value: 0, triggered_thresholds: ['abs_delta'] },
      }),
    )
  })

  it('does not fire a relative-only rule from zero', () => {
    const result = evaluate(withDelta({ relDelta: 0.01 }), normalState({ prevValue: 0 }), 0.2)
    expect(result.classification).toBe('ML_PREDICTION')
  })
})

describe('delta spike: slopes and time gaps', () => {
  it.each<[string, number]>([
    ['dt = 0', 0],
    ['dt < 0', -5 * SEC],
  ])('has no slopes when %s', (_label, dtMs) => {
    const measure = measureDelta(deltaRule({ absDelta: 1, absSlope: 0.001, relSlope: 0.001 }), null, { value: 20, time: T0 }, { value: 30, time: T0 + dtMs })
    expect(measure.slopeAbs).toBeNull()
    expect(measure.slopeRel).toBeNull()
    expect(measure.triggered).toEqual(['abs_delta'])
  })

  it('does not fire a slope-only rule for two readings at the same instant', () => {
    const result = evaluate(withDelta({ absSlope: 0.001 }), normalState({ prevValue: 20 }), 30, 0)
    expect(result.classification).toBe('ML_PREDICTION')
  })

  it('fires on the delta for two readings at the same instant, with null slopes', () => {
    const result = evaluate(withDelta({ absDelta: 5 }), normalState({ prevValue: 20 }), 30, 0)
    expect(result.effects).toContainEqual(expect.objectContaining({ payload: expect.objectContaining({ slope_abs: null, slope_rel: null, dt_seconds: 0 }) as unknown }))
  })

  it.each<[string, number, boolean]>([
    ['exactly the max gap', 600 * SEC, true],
    ['1 ms over the max gap', 600 * SEC + 1, false],
    ['well inside the gap', 30 * SEC, true],
  ])('previous reading %s (%d ms) old -> checked=%s', (_label, gapMs, checked) => {
    const result = evaluate(withDelta({ absDelta: 5, maxGapSec: 600 }), normalState({ prevValue: 20 }), 30, gapMs)
    expect(spiked(result)).toBe(checked)
  })

  it('uses the configured max gap', () => {
    const result = evaluate(withDelta({ absDelta: 5, maxGapSec: 60 }), normalState({ prevValue: 20 }), 30, 61 * SEC)
    expect(spiked(result)).toBe(false)
  })
})

describe('delta spike: minReadings and minDeltaAbs', () => {
  it.each<[number, number, boolean]>([
    [4, 5, false],
    [5, 5, true],
    [0, 0, true],
    [2, 3, false],
  ])('with %d readings seen and minReadings %d -> checked=%s', (readingsSeen, minReadings, checked) => {
    const result = evaluate(withDelta({ absDelta: 5, minReadings }), normalState({ readingsSeen, prevValue: 20 }), 30)
    expect(spiked(result)).toBe(checked)
  })

  it('first checks the reading after minReadings readings of a sensor without warm-up', () => {
    const rules = withDelta({ absDelta: 5, minReadings: 5 }, { minReadingsForNormal: 0 })
    const results = runSequence(rules, initialRuleState(), series([0, 10, 0, 10, 0, 10, 0], T0))
    expect(results.map(spiked)).toEqual([false, false, false, false, false, true, true])
    // The seventh is in cooldown with the event active: it updates the event, and notifies nobody.
    expect(results.map((r) => r.classification)).toEqual(['ML_PREDICTION', 'ML_PREDICTION', 'ML_PREDICTION', 'ML_PREDICTION', 'ML_PREDICTION', 'WARNING', 'WARNING'])
    expect(kinds(lastOf(results))).toEqual(['upsert_delta_spike'])
  })

  it.each<[number, boolean]>([
    [29.99, false],
    [30, true],
  ])('minDeltaAbs 10 from 20 to %d -> fires=%s', (value, fires) => {
    const result = evaluate(withDelta({ relDelta: 0.1, minDeltaAbs: 10 }), normalState({ prevValue: 20 }), value)
    expect(spiked(result)).toBe(fires)
  })
})

describe('delta spike: cooldown', () => {
  it.each<[string, number, boolean]>([
    ['1 s before the cooldown ends', 299 * SEC, true],
    ['1 ms before the cooldown ends', 300 * SEC - 1, true],
    ['exactly when the cooldown ends', 300 * SEC, false],
    ['long after', 3600 * SEC, false],
  ])('%s (%d ms since the last spike) -> in cooldown=%s', (_label, sinceLast, inCooldown) => {
    const time = T0 + 10 * SEC
    const state = normalState({ prevValue: 20, lastDeltaSpikeAt: time - sinceLast, operationalState: 'WARNING', activeDeltaSpike: true })
    const result = evaluateReading(withDelta({ absDelta: 5 }), state, { value: 30, time }, LIVE)
    expect(result.classification).toBe('WARNING')
    expect(codes(result)).toEqual([inCooldown ? 'DELTA_SPIKE_COOLDOWN' : 'DELTA_SPIKE'])
    expect(kinds(result)).toEqual(inCooldown ? ['upsert_delta_spike'] : ['upsert_delta_spike', 'notify'])
    expect(result.state.lastDeltaSpikeAt).toBe(inCooldown ? time - sinceLast : time)
    expect(result.state.cleanStreak).toBe(0)
  })

  it('updates the active event inside the cooldown with this spike, notifying nobody', () => {
    const time = T0 + 10 * SEC
    const state = normalState({ prevValue: 20, lastDeltaSpikeAt: T0 - 60 * SEC, operationalState: 'WARNING', activeDeltaSpike: true })
    const result = evaluateReading(withDelta({ absDelta: 5, absSlope: 0.5, severity: 'critical' }), state, { value: 12, time }, LIVE)
    expect(result.classification).toBe('WARNING')
    expect(result.effects).toEqual([
      {
        kind: 'upsert_delta_spike',
        severity: 'critical',
        time,
        value: 12,
        title: 'Cambio crítico detectado',
        message: 'El valor cambió 8.00 unidades desde 20.00. en 10 segundos',
        payload: { delta_abs: 8, delta_rel: 0.4, slope_abs: 0.8, slope_rel: 0.04, dt_seconds: 10, last_value: 20, triggered_thresholds: ['abs_delta', 'abs_slope'] },
      },
    ])
    expect(result.state).toMatchObject({ activeDeltaSpike: true, lastDeltaSpikeAt: T0 - 60 * SEC, operationalState: 'WARNING', prevValue: 12 })
  })

  it('with no active event (resolved inside the cooldown) suppresses the spike: ML_PREDICTION, DELTA_SPIKE_SUPPRESSED, nothing written', () => {
    const time = T0 + 10 * SEC
    const state = normalState({ prevValue: 20, lastDeltaSpikeAt: T0 - 60 * SEC, activeDeltaSpike: false, cleanStreak: 3 })
    const result = evaluateReading(withDelta({ absDelta: 5 }), state, { value: 30, time }, LIVE)
    expect(result.classification).toBe('ML_PREDICTION')
    expect(result.reasons).toEqual([{ code: 'DELTA_SPIKE_SUPPRESSED', rule: 'abs_delta', observed: 10, limit: 5, previous: 20, dt: 10, severity: 'warning' }])
    expect(result.effects).toEqual([])
    // A spike is still no clean reading; the cooldown still runs from the spike that opened the event.
    expect(result.state).toMatchObject({ activeDeltaSpike: false, lastDeltaSpikeAt: T0 - 60 * SEC, cleanStreak: 0, operationalState: 'NORMAL', prevValue: 30 })
  })

  it('spike, three clean readings resolve it, a spike inside the cooldown is suppressed, one after it opens a new event', () => {
    const rules = withDelta({ absDelta: 5 }, { resolveAfterReadings: 3 })
    const results = runSequence(rules, normalState({ prevValue: 20 }), series([30, 30, 30, 30, 40], T0, 20 * SEC).concat([{ value: 50, time: T0 + 400 * SEC }]))
    expect(results.map((r) => r.classification)).toEqual(['WARNING', 'ML_PREDICTION', 'ML_PREDICTION', 'ML_PREDICTION', 'ML_PREDICTION', 'WARNING'])
    expect(results.map(kinds)).toEqual([
      ['upsert_delta_spike', 'notify', 'state_change'],
      [],
      [],
      ['resolve_delta_spike', 'state_change'],
      [],
      ['upsert_delta_spike', 'notify', 'state_change'],
    ])
    expect(codes(results[4]!)).toEqual(['DELTA_SPIKE_SUPPRESSED'])
  })

  it('uses the configured cooldown', () => {
    const time = T0 + 10 * SEC
    const state = normalState({ prevValue: 20, lastDeltaSpikeAt: time - 61 * SEC })
    const result = evaluateReading(withDelta({ absDelta: 5, cooldownSec: 60 }), state, { value: 30, time }, LIVE)
    expect(codes(result)).toEqual(['DELTA_SPIKE'])
  })
})
