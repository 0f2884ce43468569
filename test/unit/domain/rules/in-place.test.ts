import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

import { cloneRuleState, evaluateReading, evaluateReadingInPlace, initialRuleState, type EvaluateOptions } from '../../../../src/lib/domain/rules/index.js'
import { BACKFILL, BACKFILL_ALERTS, deltaRule, LIVE, SEC, sensorRules, T0, threshold } from './rules-fixtures.js'

const rules = sensorRules({
  minReadingsForNormal: 3,
  thresholds: [threshold({ id: 1, condition: 'out_of_range', min: 0, max: 90, severity: 'critical' }), threshold({ id: 2, condition: 'greater_than', min: 70, severity: 'warning', consecutiveReadings: 2 })],
  delta: deltaRule({ absDelta: 5 }),
})

describe('evaluateReadingInPlace', () => {
  it('gives exactly what the pure evaluateReading gives, reading after reading, and never touches its input when backfilling without alerts', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ value: fc.double({ min: -50, max: 150, noNaN: true }), dt: fc.integer({ min: -5, max: 900 }) }), { maxLength: 40 }),
        fc.constantFrom<EvaluateOptions>(LIVE, BACKFILL, BACKFILL_ALERTS),
        (readings, options) => {
          let pure = initialRuleState()
          const owned = cloneRuleState(pure)
          let time = T0
          for (const r of readings) {
            time += r.dt * SEC
            const a = evaluateReading(rules, pure, { value: r.value, time }, options)
            const before = JSON.stringify(owned)
            const b = evaluateReadingInPlace(rules, owned, { value: r.value, time }, options)
            expect(b.classification).toBe(a.classification)
            expect(b.reasons).toEqual(a.reasons)
            expect(b.effects).toEqual(a.effects)
            if (options === BACKFILL) expect(JSON.stringify(owned)).toBe(before)
            else expect(b.state).toBe(owned)
            pure = a.state
            expect(owned).toEqual(pure)
          }
        },
      ),
      { numRuns: 300 },
    )
  })
})
