import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { guardReading } from '../../../../src/lib/domain/rules/index.js'
import type { GuardInput } from '../../../../src/lib/domain/rules/index.js'

const NOW = Date.UTC(2025, 5, 1, 12, 0, 0)
const DAY = 86_400_000

function input(overrides: Partial<GuardInput> = {}): GuardInput {
  return {
    value: 21.5,
    sensorType: 'temperature',
    deviceTime: NOW,
    now: NOW,
    backfill: false,
    maxFutureSkewSeconds: 300,
    maxAgeDays: 30,
    ...overrides,
  }
}

describe('guardReading', () => {
  it.each<[string, Partial<GuardInput>, string | null]>([
    ['a plain reading', {}, null],
    ['NaN', { value: Number.NaN }, 'VALUE_NOT_FINITE'],
    ['+Infinity', { value: Number.POSITIVE_INFINITY }, 'VALUE_NOT_FINITE'],
    ['-Infinity', { value: Number.NEGATIVE_INFINITY, sensorType: null }, 'VALUE_NOT_FINITE'],
    ['above the physical maximum', { value: 500.01 }, 'VALUE_OUTSIDE_PHYSICAL_LIMITS'],
    ['below the physical minimum', { value: -100.01 }, 'VALUE_OUTSIDE_PHYSICAL_LIMITS'],
    ['at the physical maximum', { value: 500 }, null],
    ['pH 14.5', { value: 14.5, sensorType: 'PH' }, 'VALUE_OUTSIDE_PHYSICAL_LIMITS'],
    ['any value of an unknown type', { value: 1e12, sensorType: 'flow' }, null],
    ['any value without a type', { value: -1e12, sensorType: null }, null],
    ['exactly at the future skew', { deviceTime: NOW + 300_000 }, null],
    ['1 ms beyond the future skew', { deviceTime: NOW + 300_001 }, 'TIMESTAMP_IN_FUTURE'],
    ['a custom skew', { deviceTime: NOW + 11_000, maxFutureSkewSeconds: 10 }, 'TIMESTAMP_IN_FUTURE'],
    ['exactly at the age limit', { deviceTime: NOW - 30 * DAY }, null],
    ['1 ms older than the age limit', { deviceTime: NOW - 30 * DAY - 1 }, 'TIMESTAMP_TOO_OLD'],
    ['a custom age limit', { deviceTime: NOW - 2 * DAY, maxAgeDays: 1 }, 'TIMESTAMP_TOO_OLD'],
    ['an old backfilled reading', { deviceTime: NOW - 365 * DAY, backfill: true }, null],
    ['a future backfilled reading', { deviceTime: NOW + 301_000, backfill: true }, 'TIMESTAMP_IN_FUTURE'],
    ['a null device time', { deviceTime: null }, null],
    ['a null device time with a zero window', { deviceTime: null, maxFutureSkewSeconds: 0, maxAgeDays: 0 }, null],
  ])('%s: %j -> %s', (_label, overrides, expected) => {
    expect(guardReading(input(overrides))).toBe(expected)
  })

  it.each<[string, Partial<GuardInput>, string]>([
    ['non-finite before physical limits and time', { value: Number.NaN, deviceTime: NOW + DAY }, 'VALUE_NOT_FINITE'],
    ['physical limits before the future check', { value: 9999, deviceTime: NOW + DAY }, 'VALUE_OUTSIDE_PHYSICAL_LIMITS'],
    ['physical limits before the age check', { value: -500, deviceTime: NOW - 90 * DAY }, 'VALUE_OUTSIDE_PHYSICAL_LIMITS'],
    // A negative age window makes a future time also "too old": the future check must win.
    ['future before too old', { deviceTime: NOW + DAY, maxAgeDays: -5 }, 'TIMESTAMP_IN_FUTURE'],
  ])('first failure wins: %s', (_label, overrides, expected) => {
    expect(guardReading(input(overrides))).toBe(expected)
  })

  it('accepts every finite in-limit value with a time inside the window (property)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -100, max: 500, noNaN: true }),
        fc.integer({ min: -30 * DAY, max: 300_000 }),
        fc.boolean(),
        (value, offset, backfill) => {
          expect(guardReading(input({ value, deviceTime: NOW + offset, backfill }))).toBeNull()
        },
      ),
    )
  })

  it('rejects every non-finite value as VALUE_NOT_FINITE whatever else is wrong (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
        fc.option(fc.string(), { nil: null }),
        fc.option(fc.integer({ min: -1e12, max: 1e12 }), { nil: null }),
        fc.boolean(),
        (value, sensorType, offset, backfill) => {
          const deviceTime = offset === null ? null : NOW + offset
          expect(guardReading(input({ value, sensorType, deviceTime, backfill }))).toBe('VALUE_NOT_FINITE')
        },
      ),
    )
  })
})

describe('storable time range', () => {
  it('refuses device times before year 1 even for a backfill, accepts year 1', () => {
    const base = { value: 1, sensorType: null, now: Date.UTC(2026, 0, 1), backfill: true, maxFutureSkewSeconds: 300, maxAgeDays: 30 }
    expect(guardReading({ ...base, deviceTime: -62_135_596_800_001 })).toBe('TIMESTAMP_TOO_OLD')
    expect(guardReading({ ...base, deviceTime: -62_135_596_800_000 })).toBeNull()
  })
})
