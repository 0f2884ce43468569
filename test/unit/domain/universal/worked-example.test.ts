import { describe, expect, it } from 'vitest'
import { classifyPoints, initialStreamRuleState } from '../../../../src/lib/domain/universal/index.js'
import { LIVE, bpmConfig, points } from './fixtures.js'

// Reference §8.4's worked example (health/bpm built-in constraints: physical 30-220, operational 50-180,
// warning 45-160, critical 40-200), with DESIGN §5's rejection of values outside the physical range.
const VALUES = [25, 35, 42, 47, 55, 170, 190, 210, 230]

describe('reference §8.4 worked example (health/bpm)', () => {
  it('classifies every value as the reference lists, rejecting the physically impossible ones', () => {
    const result = classifyPoints(bpmConfig(), initialStreamRuleState(), points(VALUES), LIVE)
    expect(result.outcomes.map((o) => [o.classification, o.stored, o.reasons[0]?.rule ?? null])).toEqual([
      ['rejected', false, 'physical_min'],
      ['critical_violation', true, 'critical_min'],
      ['warning_violation', true, 'operational_min'],
      ['warning_violation', true, 'operational_min'],
      ['normal', true, null],
      ['warning_violation', true, 'warning_max'],
      ['warning_violation', true, 'operational_max'],
      ['critical_violation', true, 'critical_max'],
      ['rejected', false, 'physical_max'],
    ])
  })

  it('stores the physically impossible values as critical with store_out_of_physical', () => {
    const result = classifyPoints(bpmConfig({ storeOutOfPhysical: true }), initialStreamRuleState(), points(VALUES), LIVE)
    expect(result.outcomes.map((o) => o.classification)).toEqual([
      'critical_violation',
      'critical_violation',
      'warning_violation',
      'warning_violation',
      'normal',
      'warning_violation',
      'warning_violation',
      'critical_violation',
      'critical_violation',
    ])
    expect(result.outcomes.every((o) => o.stored)).toBe(true)
    expect(result.outcomes[0]?.reasons).toEqual([{ code: 'PHYSICAL_LIMIT', rule: 'physical_min', observed: 25, limit: 30 }])
  })

  it('gives the original reason texts', () => {
    const result = classifyPoints(bpmConfig(), initialStreamRuleState(), points(VALUES), LIVE)
    expect(result.outcomes.map((o) => o.message)).toEqual([
      'Value 25 below physical minimum 30',
      'Value 35 in critical zone (below 40)',
      'Value 42 below operational minimum 50',
      'Value 47 below operational minimum 50',
      'Value within all configured ranges',
      'Value 170 in warning zone (above 160)',
      'Value 190 above operational maximum 180',
      'Value 210 in critical zone (above 200)',
      'Value 230 above physical maximum 220',
    ])
  })

  it('opens one critical alert, leaves it through the warnings, and updates it in place on the next critical', () => {
    const result = classifyPoints(bpmConfig(), initialStreamRuleState(), points(VALUES), LIVE)
    expect(result.outcomes.map((o) => o.alertActions.map((a) => a.kind))).toEqual([[], ['open'], [], [], [], [], [], ['update'], []])
    expect(result.alertPlan).toEqual({
      existing: null,
      inserts: [
        {
          severity: 'CRITICAL',
          value: 210,
          thresholdViolated: 'critical_max',
          message: 'Value 210 in critical zone (above 200)',
          triggeredAt: points(VALUES)[1]?.time,
          resolvedAt: null,
          resolutionReason: null,
          isActive: true,
        },
      ],
    })
    expect(result.state.activeAlert?.severity).toBe('CRITICAL')
  })

  it('publishes only the normal point to the ML stream', () => {
    const result = classifyPoints(bpmConfig(), initialStreamRuleState(), points(VALUES), LIVE)
    expect(result.outcomes.map((o) => o.publishToMl)).toEqual([false, false, false, false, true, false, false, false, false])
  })
})
