import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeRuleState, encodeRuleState, initialRuleState, OPERATIONAL_STATES, SEVERITIES } from '../../../../src/lib/domain/rules/index.js'
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

describe('encodeRuleState', () => {
  it.each<[string, RuleState]>([
    ['the initial state', initialRuleState()],
    ['a full state', full],
    ['an alert without threshold', normalState({ activeAlert: { severity: 'info', thresholdId: null } })],
  ])('decodes back to %s', (_label, state) => {
    expect(decodeRuleState(JSON.parse(encodeRuleState(state)))).toStrictEqual(state)
  })

  it('writes only what differs from the initial state', () => {
    expect(JSON.parse(encodeRuleState(initialRuleState()))).toStrictEqual({ operationalState: 'INITIALIZING' })
    const live = normalState({ readingsSeen: 1234, cleanStreak: 1200, prevValue: -0.5, prevTime: T0, stateChangedAt: T0 - 60_000 })
    expect(Object.keys(JSON.parse(encodeRuleState(live)) as object).sort()).toEqual(
      ['operationalState', 'validReadingsCount', 'readingsSeen', 'cleanStreak', 'prevValue', 'prevTime', 'stateChangedAt'].filter((k) => (live as unknown as Record<string, unknown>)[k] !== 0).sort(),
    )
    expect(encodeRuleState(live).length).toBeLessThan(JSON.stringify(live).length * 0.7)
  })

  it('round-trips any valid state (property)', () => {
    const time = fc.integer({ min: -62_135_596_800_000, max: 253_402_300_799_999 })
    const nullable = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | null> => fc.option(a, { nil: null })
    const stateArb: fc.Arbitrary<RuleState> = fc
      .record({
        operationalState: fc.constantFrom(...OPERATIONAL_STATES),
        validReadingsCount: fc.nat(),
        readingsSeen: fc.nat(),
        consecutive: fc.dictionary(fc.integer({ min: 1, max: 1e6 }).map(String), fc.integer({ min: 1, max: 1e6 }), { maxKeys: 3 }).map((d) => ({ ...d })),
        cleanStreak: fc.nat(),
        lastDeltaSpikeAt: nullable(time),
        prev: nullable(fc.tuple(fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => (v === 0 ? 0 : v)), time)),
        activeAlert: nullable(fc.record({ severity: fc.constantFrom(...SEVERITIES), thresholdId: nullable(fc.integer({ min: 1, max: 1e9 })) })),
        activeDeltaSpike: fc.boolean(),
        lastAlertNotificationAt: nullable(time),
        stateChangedAt: nullable(time),
      })
      .map(({ prev, activeAlert, ...rest }) => ({ ...rest, activeAlert: activeAlert && { ...activeAlert }, prevValue: prev?.[0] ?? null, prevTime: prev?.[1] ?? null }))
    fc.assert(
      fc.property(stateArb, (state) => {
        expect(decodeRuleState(JSON.parse(encodeRuleState(state)))).toStrictEqual(state)
      }),
      { numRuns: 2000 },
    )
  })
})
