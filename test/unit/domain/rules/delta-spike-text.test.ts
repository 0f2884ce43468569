import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { deltaSpikeMessage, deltaSpikeTitle, formatFixedLikePython } from '../../../../src/lib/domain/rules/delta-spike-text.js'

describe('formatFixedLikePython', () => {
  // Expected strings are what CPython 3 prints for f"{x:.2f}" and f"{x:.0f}".
  it.each<[number, string, string]>([
    [0.125, '0.12', '0'],
    [0.375, '0.38', '0'],
    [0.625, '0.62', '1'],
    [0.875, '0.88', '1'],
    [2.5, '2.50', '2'],
    [3.5, '3.50', '4'],
    [0.5, '0.50', '0'],
    [1.5, '1.50', '2'],
    [7.5, '7.50', '8'],
    [-0.125, '-0.12', '-0'],
    [-2.5, '-2.50', '-2'],
    [1.005, '1.00', '1'],
    [2.675, '2.67', '3'],
    [12.345, '12.35', '12'],
    [0.0625, '0.06', '0'],
    [20, '20.00', '20'],
    [1234.5678, '1234.57', '1235'],
    [1e-7, '0.00', '0'],
    [-0.001, '-0.00', '-0'],
  ])('%d -> %s / %s', (x, two, zero) => {
    expect(formatFixedLikePython(x, 2)).toBe(two)
    expect(formatFixedLikePython(x, 0)).toBe(zero)
  })

  it('differs from toFixed only on exact ties, by one unit in the last place', () => {
    fc.assert(
      fc.property(fc.double({ min: -1e6, max: 1e6, noNaN: true }), fc.constantFrom(0, 2), (x, digits) => {
        const ours = formatFixedLikePython(x, digits)
        const theirs = x.toFixed(digits)
        const tie = Number.isInteger(Math.abs(x) * 2 ** (digits + 1)) && (Math.abs(x) * 2 ** (digits + 1)) % 2 === 1
        if (!tie) expect(ours).toBe(theirs)
        else expect(Math.abs(Number(ours) - Number(theirs))).toBeCloseTo(10 ** -digits, 9)
      }),
      { numRuns: 500 },
    )
  })
})

describe('deltaSpikeTitle', () => {
  it.each<[Parameters<typeof deltaSpikeTitle>[0], Parameters<typeof deltaSpikeTitle>[1], string]>([
    ['critical', ['abs_slope'], 'Cambio crítico detectado'],
    ['warning', ['rel_delta', 'abs_slope'], 'Cambio significativo en valor'],
    ['info', ['rel_slope'], 'Cambio rápido detectado'],
    ['warning', [], 'Variación inusual detectada'],
  ])('%s %j -> %s', (severity, triggered, title) => {
    expect(deltaSpikeTitle(severity, triggered)).toBe(title)
  })
})

describe('deltaSpikeMessage', () => {
  it('adds the seconds only when a slope fired over a positive dt', () => {
    const base = { value: 30, previous: 20, deltaAbs: 10, dtSeconds: 12.4 }
    expect(deltaSpikeMessage({ ...base, triggered: ['abs_delta'] })).toBe('El valor subió 10.00 unidades desde 20.00')
    expect(deltaSpikeMessage({ ...base, triggered: ['rel_slope'] })).toBe('El valor subió 10.00 unidades desde 20.00. en 12 segundos')
    expect(deltaSpikeMessage({ ...base, dtSeconds: 0, triggered: ['abs_slope'] })).toBe('El valor subió 10.00 unidades desde 20.00')
    expect(deltaSpikeMessage({ ...base, value: 10, previous: -0.125, deltaAbs: 10.125, triggered: ['abs_delta'] })).toBe('El valor subió 10.12 unidades desde -0.12')
    expect(deltaSpikeMessage({ ...base, value: 10, triggered: ['abs_delta'] })).toBe('El valor cambió 10.00 unidades desde 20.00')
  })
})
