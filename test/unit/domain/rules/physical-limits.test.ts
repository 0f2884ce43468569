import { describe, expect, it } from 'vitest'
import {
  deltaNoiseFloorFor,
  isSuspiciousZero,
  isWithinPhysicalLimits,
  physicalLimitsFor,
} from '../../../../src/lib/domain/rules/index.js'

describe('physical limits', () => {
  it.each([
    ['temperature', -100, 500],
    ['humidity', 0, 100],
    ['pressure', 0, 2000],
    ['air_quality', 0, 10_000],
    ['voltage', 0, 1000],
    ['power', 0, 1_000_000],
    ['ph', 0, 14],
  ])('%s is limited to [%d, %d], bounds included', (type, min, max) => {
    expect(physicalLimitsFor(type)).toEqual({ min, max })
    expect(isWithinPhysicalLimits(min, type)).toBe(true)
    expect(isWithinPhysicalLimits(max, type)).toBe(true)
    expect(isWithinPhysicalLimits(min - 0.001, type)).toBe(false)
    expect(isWithinPhysicalLimits(max + 0.001, type)).toBe(false)
  })

  it.each([' Temperature ', 'TEMPERATURE', '\ttemperature\n'])('matches the type %j trimmed and case-insensitively', (type) => {
    expect(physicalLimitsFor(type)).toEqual({ min: -100, max: 500 })
    expect(isWithinPhysicalLimits(501, type)).toBe(false)
  })

  it.each([['flow'], [null], [''], ['  '], ['constructor'], ['__proto__'], ['toString'], ['hasOwnProperty']])(
    'does not limit the unknown type %j',
    (type) => {
      expect(physicalLimitsFor(type)).toBeNull()
      expect(isWithinPhysicalLimits(-1e300, type)).toBe(true)
      expect(isWithinPhysicalLimits(1e300, type)).toBe(true)
    },
  )
})

describe('delta noise floors', () => {
  it.each([
    ['temperature', 0.5, 0.02],
    ['humidity', 2.0, 0.03],
    ['air_quality', 50, 0.1],
    ['voltage', 1.0, 0.05],
    ['power', 10, 0.1],
    ['pressure', 0.5, 0.005],
    [' Pressure', 0.5, 0.005],
    ['ph', 0.1, 0.01],
    ['flow', 0.1, 0.01],
    [null, 0.1, 0.01],
    ['constructor', 0.1, 0.01],
  ])('%j has floor abs %d rel %d', (type, abs, rel) => {
    expect(deltaNoiseFloorFor(type)).toEqual({ abs, rel })
  })
})

describe('isSuspiciousZero', () => {
  it.each([
    [0, 'temperature', true],
    [-0, 'temperature', true],
    [1e-6, 'humidity', true],
    [-1e-6, 'pressure', true],
    [0, ' PH ', true],
    [2e-6, 'ph', false],
    [0.5, 'temperature', false],
    [0, 'voltage', false],
    [0, 'power', false],
    [0, 'air_quality', false],
    [0, 'flow', false],
    [0, null, false],
  ])('value %d of type %j -> %s', (value, type, expected) => {
    expect(isSuspiciousZero(value, type)).toBe(expected)
  })
})
