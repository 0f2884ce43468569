import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

import { fitsLegacyDecimal, LEGACY_DECIMAL_MAX_ABS } from '../../../../src/lib/adapters/storage/sqlserver/value-range.js'

/** What decimal(15,5) does with a value: round half away from zero to 5 decimals, overflow at 10^10. */
function storesInDecimal15x5(v: number): boolean {
  // Exact decimal expansion of the double, so the check does not share the code's float arithmetic.
  const [intPart = '0', frac = ''] = Math.abs(v).toFixed(20).split('.')
  let scaled = BigInt(intPart + frac.slice(0, 5).padEnd(5, '0'))
  if (Number(frac[5] ?? '0') >= 5) scaled += 1n
  return scaled < 10n ** 15n
}

describe('fitsLegacyDecimal', () => {
  it.each<[number, boolean]>([
    [0, true],
    [-0, true],
    [23.5, true],
    [1e-7, true],
    [9_999_999_999, true],
    [9_999_999_999.99999, true],
    [-9_999_999_999.99999, true],
    [LEGACY_DECIMAL_MAX_ABS, true],
    [-LEGACY_DECIMAL_MAX_ABS, true],
    // Rounds up to 10000000000.00000 and overflows.
    [9_999_999_999.999996, false],
    [-9_999_999_999.999996, false],
    [1e10, false],
    [-1e10, false],
    [1e12, false],
    [Number.MAX_VALUE, false],
    [Number.NaN, false],
    [Number.POSITIVE_INFINITY, false],
    [Number.NEGATIVE_INFINITY, false],
  ])('%s -> %s', (v, expected) => {
    expect(fitsLegacyDecimal(v)).toBe(expected)
  })

  it('the bound is the last double that rounds below 10^10', () => {
    expect(storesInDecimal15x5(LEGACY_DECIMAL_MAX_ABS)).toBe(true)
    const next = LEGACY_DECIMAL_MAX_ABS + 2 ** -19 // the spacing of doubles just below 2^34
    expect(next).toBeGreaterThan(LEGACY_DECIMAL_MAX_ABS)
    expect(storesInDecimal15x5(next)).toBe(false)
    expect(fitsLegacyDecimal(next)).toBe(false)
  })

  it('agrees with decimal(15,5) rounding near the bound', () => {
    fc.assert(
      fc.property(fc.double({ min: 9_999_999_999.9999, max: 10_000_000_000.0001, noNaN: true }), fc.boolean(), (v, negative) => {
        const x = negative ? -v : v
        expect(fitsLegacyDecimal(x)).toBe(storesInDecimal15x5(x))
      }),
    )
  })
})
