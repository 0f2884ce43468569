import { describe, expect, it } from 'vitest'
import { decodeRuleState, initialRuleState } from '../../../../src/lib/domain/rules/index.js'
import type { RuleState } from '../../../../src/lib/domain/rules/index.js'
import { T0, normalState } from './rules-fixtures.js'

const full: RuleState = normalState({
  operationalState: 'ALERT',
  consecutive: { '3': 2 },
  cleanStreak: 1,
  lastDeltaSpikeAt: T0 - 1000,
  activeAlert: { severity: 'critical', thresholdId: 3 },
  activeDeltaSpike: true,
  lastAlertNotificationAt: T0,
  stateChangedAt: T0,
})

describe('decodeRuleState', () => {
  it.each<[string, RuleState]>([
    ['the initial state', initialRuleState()],
    ['a full state', full],
    ['an alert without threshold', normalState({ activeAlert: { severity: 'info', thresholdId: null } })],
  ])('round-trips %s through JSON', (_label, state) => {
    expect(decodeRuleState(JSON.parse(JSON.stringify(state)))).toStrictEqual(state)
  })

  it('fills missing fields with their initial value', () => {
    expect(decodeRuleState({})).toStrictEqual(initialRuleState())
    expect(decodeRuleState({ operationalState: 'NORMAL', readingsSeen: 4 })).toStrictEqual({ ...initialRuleState(), operationalState: 'NORMAL', readingsSeen: 4 })
  })

  it('drops zero counts and a previous value without its time', () => {
    expect(decodeRuleState({ ...full, consecutive: { '1': 0, '2': 5 } })?.consecutive).toStrictEqual({ '2': 5 })
    expect(decodeRuleState({ ...full, prevTime: null })).toMatchObject({ prevValue: null, prevTime: null })
  })

  it.each<[string, unknown]>([
    ['null', null],
    ['an array', []],
    ['a string', '{}'],
    ['an unknown state', { operationalState: 'UNKNOWN' }],
    ['a negative count', { readingsSeen: -1 }],
    ['a fractional count', { cleanStreak: 1.5 }],
    ['a string count', { validReadingsCount: '3' }],
    ['a bad consecutive entry', { consecutive: { '1': 'x' } }],
    ['a consecutive array', { consecutive: [1] }],
    ['a bad severity', { activeAlert: { severity: 'fatal', thresholdId: 1 } }],
    ['a bad threshold id', { activeAlert: { severity: 'warning', thresholdId: '1' } }],
    ['a non-boolean spike flag', { activeDeltaSpike: 1 }],
    ['a string time', { prevTime: '2025-01-01T00:00:00Z', prevValue: 1 }],
    ['a null where a number is needed', { cleanStreak: null }],
  ])('refuses %s', (_label, raw) => {
    expect(decodeRuleState(raw)).toBeNull()
  })
})
