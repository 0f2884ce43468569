import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeRuleState, evaluateReading, initialRuleState, severityRank } from '../../../../src/lib/domain/rules/index.js'
import type {
  Condition,
  DeltaRule,
  Effect,
  EvaluateOptions,
  OperationalState,
  RuleState,
  SensorRules,
  Severity,
  ThresholdRule,
} from '../../../../src/lib/domain/rules/index.js'
import { BACKFILL, HOUR, LIVE, SEC, T0, deepFreeze, normalState } from './rules-fixtures.js'

const severityArb = fc.constantFrom<Severity>('info', 'warning', 'critical')
// Small integers make equal_to and the bounds of out_of_range actually hit.
const boundArb = fc.option(fc.integer({ min: -50, max: 50 }), { nil: null })
const valueArb = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -60, max: 60 }) },
  { weight: 1, arbitrary: fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }) },
)

function thresholdArb(id: number): fc.Arbitrary<ThresholdRule> {
  return fc.record({
    id: fc.constant(id),
    name: fc.option(fc.constantFrom('hard-limits', 'comfort'), { nil: null }),
    condition: fc.constantFrom<Condition>('greater_than', 'less_than', 'equal_to', 'out_of_range'),
    min: boundArb,
    max: boundArb,
    severity: severityArb,
    consecutiveReadings: fc.integer({ min: 0, max: 3 }),
  })
}

const thresholdsArb: fc.Arbitrary<ThresholdRule[]> = fc
  .uniqueArray(fc.integer({ min: 1, max: 50 }), { maxLength: 4 })
  .chain((ids) => fc.tuple(...ids.map(thresholdArb)))

const limitArb = fc.option(fc.double({ min: 0, max: 50, noNaN: true }), { nil: null })
const deltaArb: fc.Arbitrary<DeltaRule> = fc.record({
  id: fc.constant(1),
  absDelta: limitArb,
  relDelta: fc.option(fc.double({ min: 0, max: 2, noNaN: true }), { nil: null }),
  absSlope: limitArb,
  relSlope: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: null }),
  severity: severityArb,
  cooldownSec: fc.constantFrom(0, 30, 300),
  minDeltaAbs: fc.option(fc.double({ min: 0, max: 10, noNaN: true }), { nil: null }),
  minReadings: fc.integer({ min: 0, max: 6 }),
  maxGapSec: fc.constantFrom(60, 600),
})

const rulesArb: fc.Arbitrary<SensorRules> = fc.record({
  sensorId: fc.constant(7),
  deviceId: fc.constant(3),
  sensorType: fc.constantFrom(null, 'temperature', 'humidity', 'pressure', 'flow'),
  minReadingsForNormal: fc.integer({ min: 0, max: 4 }),
  resolveAfterReadings: fc.integer({ min: 0, max: 4 }),
  thresholds: thresholdsArb,
  delta: fc.option(deltaArb, { nil: null }),
})

// Mostly small forward steps, some simultaneous, some late, some long enough to go stale or exceed the max gap.
const stepArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 120 * SEC }) },
  { weight: 1, arbitrary: fc.constant(0) },
  { weight: 1, arbitrary: fc.integer({ min: -10 * 60 * SEC, max: -1 }) },
  { weight: 1, arbitrary: fc.integer({ min: 10 * 60 * SEC, max: 4 * HOUR }) },
)
const readingsArb = fc.array(fc.record({ value: valueArb, step: stepArb }), { minLength: 1, maxLength: 40 })
const optionsArb = fc.record({
  staleAfterMs: fc.constantFrom(2 * HOUR, 30 * 60 * SEC),
  mode: fc.constant<'live'>('live'),
  alerts: fc.boolean(),
  alertRenotifyMs: fc.constantFrom(5 * 60 * SEC, 60 * SEC),
})

function withTimes(readings: ReadonlyArray<{ value: number; step: number }>): Array<{ value: number; time: number }> {
  let time = T0
  return readings.map(({ value, step }) => {
    time += step
    return { value, time }
  })
}

interface StoreModel {
  alert: Severity | null
  spike: boolean
  state: OperationalState
}

/** Applies effects to a model of the tables and fails on anything storage could not do. */
function applyEffects(model: StoreModel, effects: readonly Effect[]): void {
  let lastAlertWrite: Effect | undefined
  for (const effect of effects) {
    switch (effect.kind) {
      case 'open_alert':
        expect(model.alert, 'open_alert while one is active').toBeNull()
        model.alert = effect.severity
        lastAlertWrite = effect
        break
      case 'update_alert':
        expect(model.alert, 'update_alert of another severity').toBe(effect.severity)
        lastAlertWrite = effect
        break
      case 'resolve_alert':
        expect(model.alert, 'resolve_alert with none active').not.toBeNull()
        if (effect.reason === 'escalated') expect(effects[effects.indexOf(effect) + 1]?.kind).toBe('open_alert')
        model.alert = null
        break
      case 'notify':
        if (effect.source === 'alert') {
          expect(lastAlertWrite, 'alert notification without an alert write').toBeDefined()
          expect(lastAlertWrite?.kind === 'open_alert' || lastAlertWrite?.kind === 'update_alert').toBe(true)
        } else {
          expect(effects.some((e) => e.kind === 'upsert_delta_spike')).toBe(true)
        }
        break
      case 'upsert_delta_spike':
        model.spike = true
        break
      case 'resolve_delta_spike':
        expect(model.spike, 'resolve_delta_spike with none active').toBe(true)
        model.spike = false
        break
      case 'state_change':
        expect(effect.from).not.toBe(effect.to)
        if (!(effect.from === 'STALE' && effect.to === 'INITIALIZING')) expect(effect.from).toBe(model.state)
        model.state = effect.to
        break
    }
  }
  expect(effects.filter((e) => e.kind === 'notify').length).toBeLessThanOrEqual(1)
}

describe('evaluateReading properties', () => {
  it('never throws, keeps the state JSON round-trippable and decodable, and emits effects storage can apply', () => {
    fc.assert(
      fc.property(rulesArb, readingsArb, optionsArb, (rules, readings, options: EvaluateOptions) => {
        let state: RuleState = deepFreeze(initialRuleState())
        const model: StoreModel = { alert: null, spike: false, state: state.operationalState }
        for (const reading of withTimes(readings)) {
          const spikeBefore = model.spike
          const result = evaluateReading(rules, state, reading, options)
          const json: unknown = JSON.parse(JSON.stringify(result.state))
          expect(json).toStrictEqual(result.state)
          expect(decodeRuleState(json)).toStrictEqual(result.state)
          expect(JSON.parse(JSON.stringify(result.reasons))).toStrictEqual(result.reasons)
          expect(JSON.parse(JSON.stringify(result.effects))).toStrictEqual(result.effects)
          expect(result.reasons.length).toBeGreaterThan(0)

          applyEffects(model, result.effects)
          expect(result.state.activeAlert?.severity ?? null).toBe(model.alert)
          expect(result.state.activeDeltaSpike).toBe(model.spike)
          expect(result.state.operationalState).toBe(model.state)
          if (result.state.operationalState === 'ALERT') expect(result.state.activeAlert?.severity).toBe('critical')
          if (result.state.operationalState === 'WARNING') expect(result.state.activeAlert !== null || result.state.activeDeltaSpike).toBe(true)
          if (result.state.prevTime !== null && state.prevTime !== null) expect(result.state.prevTime).toBeGreaterThanOrEqual(state.prevTime)
          expect(result.state.readingsSeen).toBeGreaterThanOrEqual(1)

          const late = state.prevTime !== null && reading.time < state.prevTime
          expect(result.reasons.some((r) => r.code === 'LATE_READING')).toBe(late)
          if (late) {
            // A late reading moves nothing at all and writes nothing.
            expect(result.state).toStrictEqual(state)
            expect(result.effects).toEqual([])
            expect(result.reasons[0]?.code).toBe('LATE_READING')
            expect(result.classification).not.toBe('WARNING')
          } else {
            // What the reading says, the tables say: a WARNING has its active event, an ALERT an active alert.
            if (result.classification === 'WARNING') {
              expect(result.effects.some((e) => e.kind === 'upsert_delta_spike')).toBe(true)
              expect(model.spike).toBe(true)
            }
            if (result.classification === 'ALERT') expect(model.alert).not.toBeNull()
          }
          // Inside the cooldown only an active event is updated; with none the spike is suppressed.
          if (result.reasons.some((r) => r.code === 'DELTA_SPIKE_COOLDOWN')) expect(spikeBefore).toBe(true)
          if (result.reasons.some((r) => r.code === 'DELTA_SPIKE_SUPPRESSED')) {
            expect(spikeBefore).toBe(false)
            expect(result.classification).toBe('ML_PREDICTION')
            expect(result.effects).toEqual([])
          }
          for (const effect of result.effects) {
            if (effect.kind === 'upsert_delta_spike') {
              expect(effect.title.length).toBeGreaterThan(0)
              expect(effect.message.length).toBeGreaterThan(0)
            }
          }

          state = deepFreeze(result.state)
        }
      }),
      { numRuns: 300 },
    )
  })

  it('late readings change nothing for the others: the in-order readings evaluate exactly as if the late ones never came', () => {
    fc.assert(
      fc.property(rulesArb, readingsArb, optionsArb, (rules, readings, options: EvaluateOptions) => {
        const timed = withTimes(readings)
        const all: Array<ReturnType<typeof evaluateReading> | null> = []
        let state: RuleState = initialRuleState()
        for (const reading of timed) {
          const late = state.prevTime !== null && reading.time < state.prevTime
          const result = evaluateReading(rules, state, reading, options)
          all.push(late ? null : result)
          state = result.state
        }
        let inOrderState: RuleState = initialRuleState()
        timed.forEach((reading, index) => {
          const expected = all[index]
          if (expected === null || expected === undefined) return
          const result = evaluateReading(rules, inOrderState, reading, options)
          expect(result).toStrictEqual(expected)
          inOrderState = result.state
        })
        expect(inOrderState).toStrictEqual(state)
      }),
      { numRuns: 300 },
    )
  })

  it('classifies ALERT iff some threshold reached its consecutive count, and picks the winner by severity then id', () => {
    const violates = (t: ThresholdRule, v: number): boolean => {
      if (t.condition === 'out_of_range') return (t.min !== null && v < t.min) || (t.max !== null && v > t.max)
      if (t.min === null) return false
      if (t.condition === 'greater_than') return v > t.min
      if (t.condition === 'less_than') return v < t.min
      return v === t.min
    }
    fc.assert(
      fc.property(
        thresholdsArb,
        fc.array(fc.record({ value: valueArb, step: fc.integer({ min: 1, max: 60 * SEC }) }), { minLength: 1, maxLength: 30 }),
        (thresholds, readings) => {
          const rules: SensorRules = { sensorId: 7, deviceId: 3, sensorType: null, minReadingsForNormal: 0, resolveAfterReadings: 2, thresholds, delta: null }
          const counts = new Map<number, number>()
          let state = normalState()
          for (const reading of withTimes(readings)) {
            const fired: ThresholdRule[] = []
            for (const t of thresholds) {
              const count = violates(t, reading.value) ? (counts.get(t.id) ?? 0) + 1 : 0
              counts.set(t.id, count)
              if (count > 0 && count >= Math.max(1, t.consecutiveReadings)) fired.push(t)
            }
            const result = evaluateReading(rules, state, reading, { ...LIVE, staleAfterMs: Number.POSITIVE_INFINITY })
            expect(result.classification === 'ALERT').toBe(fired.length > 0)
            if (fired.length > 0) {
              const winner = [...fired].sort((a, b) => severityRank(b.severity) - severityRank(a.severity) || a.id - b.id)[0]
              expect(result.reasons[0]).toMatchObject({ code: 'THRESHOLD', thresholdId: winner?.id, severity: winner?.severity })
            }
            state = result.state
          }
        },
      ),
      { numRuns: 300 },
    )
  })

  it('in backfill without alerts, classifies like live but leaves the state and storage alone', () => {
    fc.assert(
      fc.property(rulesArb, readingsArb, valueArb, stepArb, (rules, history, value, step) => {
        // Reach an arbitrary state live, then backfill one reading against it.
        let state = initialRuleState()
        for (const reading of withTimes(history)) state = evaluateReading(rules, state, reading, LIVE).state
        const reading = { value, time: (state.prevTime ?? T0) + step }
        const frozen = deepFreeze(structuredClone(state))
        const live = evaluateReading(rules, frozen, reading, LIVE)
        const backfill = evaluateReading(rules, frozen, reading, BACKFILL)
        expect(backfill.classification).toBe(live.classification)
        expect(backfill.reasons).toStrictEqual(live.reasons)
        expect(backfill.effects).toEqual([])
        expect(backfill.state).toStrictEqual(state)
      }),
      { numRuns: 300 },
    )
  })
})
