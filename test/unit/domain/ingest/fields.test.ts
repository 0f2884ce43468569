import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

import { datetimeField, idString, jsonDepthExceeds, objectField, strictInt, strictNumber, uuidField } from '../../../../src/lib/domain/ingest/fields.js'
import type { ParseIssue } from '../../../../src/lib/domain/ingest/issues.js'

/** Runs one field rule; returns the value, or the issue codes it pushed. */
function run<T>(rule: (v: unknown, path: Array<string | number>, issues: ParseIssue[]) => T | undefined, v: unknown): T | string[] {
  const issues: ParseIssue[] = []
  const out = rule(v, ['f'], issues)
  if (issues.length > 0) {
    expect(out).toBeUndefined()
    expect(issues.every((i) => i.path.join('.') === 'f')).toBe(true)
    return issues.map((i) => i.code)
  }
  return out as T
}

describe('numbers', () => {
  it('JSON numbers and plain decimal strings; nothing else is coerced', () => {
    expect(run(strictNumber, 23.5)).toBe(23.5)
    expect(run(strictNumber, ' -23.5 ')).toBe(-23.5)
    expect(Object.is(run(strictNumber, -0), 0)).toBe(true)
    for (const [v, code] of [
      [true, 'float_type'],
      [null, 'float_type'],
      [[1], 'float_type'],
      ['NaN', 'float_parsing'],
      ['Infinity', 'float_parsing'],
      ['0x10', 'float_parsing'],
      ['1e3', 'float_parsing'],
      [Infinity, 'finite_number'],
      [`1${'0'.repeat(400)}`, 'finite_number'],
    ] as const)
      expect(run(strictNumber, v), String(v)).toEqual([code])
  })

  it('any finite number is taken as is', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
        expect(run(strictNumber, x)).toBe(x === 0 ? 0 : x)
      }),
    )
  })
})

describe('integers', () => {
  it('safe integers as numbers or strings, with pydantic codes for the rest', () => {
    expect(run(strictInt, 5)).toBe(5)
    expect(run(strictInt, '-5')).toBe(-5)
    expect(run(strictInt, 5.5)).toEqual(['int_from_float'])
    expect(run(strictInt, '5.5')).toEqual(['int_parsing'])
    expect(run(strictInt, 2 ** 60)).toEqual(['int_from_float'])
    expect(run(strictInt, true)).toEqual(['int_type'])
    const issues: ParseIssue[] = []
    expect(strictInt(0, ['sensor_id'], issues, 1)).toBeUndefined()
    expect(issues).toEqual([{ path: ['sensor_id'], code: 'greater_than_equal', msg: 'Input should be greater than or equal to 1', input: 0, ctx: { ge: 1 } }])
  })
})

describe('ids and UUIDs', () => {
  const U = '3f0e8d5c-2b1a-4c1e-9a57-1d2f3e4a5b6c'
  it('UUIDs upper-case, hyphenless or braced are normalised', () => {
    for (const form of [U, U.toUpperCase(), U.replaceAll('-', ''), `{${U}}`]) expect(run(uuidField, form)).toBe(U)
    expect(run(uuidField, 'nope')).toEqual(['uuid_parsing'])
    expect(run(uuidField, 42)).toEqual(['uuid_type'])
  })
  it('ids are NFC-normalised; control characters and lone surrogates are refused', () => {
    expect(run(idString, 'e\u0301')).toBe('\u00e9')
    expect(run(idString, 'a\u0000b')).toEqual(['string_pattern_mismatch'])
    expect(run(idString, 'a\uD800')).toEqual(['string_pattern_mismatch'])
    expect(run(idString, 'x'.repeat(256))).toEqual(['string_too_long'])
  })
})

describe('timestamps', () => {
  it('epoch seconds or ms by magnitude, ISO with or without offset, a date alone is midnight UTC', () => {
    expect(run(datetimeField, 1_796_388_477)).toBe(1_796_388_477_000)
    expect(run(datetimeField, 1_796_388_477_000)).toBe(1_796_388_477_000)
    expect(run(datetimeField, '2026-12-04T10:00:00+02:00')).toBe(Date.parse('2026-12-04T08:00:00Z'))
    expect(run(datetimeField, '2026-12-04 10:00')).toBe(Date.parse('2026-12-04T10:00:00Z'))
    expect(run(datetimeField, '2026-12-04')).toBe(Date.parse('2026-12-04T00:00:00Z'))
    for (const bad of ['2024-02-30', '2026-12-04T25:00', 'tomorrow', true, null, '2026-12-04Z']) expect(run(datetimeField, bad), String(bad)).toEqual(['datetime_parsing'])
  })

  it('keeps microseconds: rounded to the nearest, never truncated to the millisecond', () => {
    expect(run(datetimeField, 1796386296.7999997)).toBe(1796386296800)
    expect(run(datetimeField, 1796388477.123456)).toBe(1796388477123.456)
    expect(run(datetimeField, '2026-12-04T10:00:00.1234567Z')).toBe(Date.parse('2026-12-04T10:00:00Z') + 123.457)
    expect(run(datetimeField, '2026-12-04T10:00:00.123456Z')).toBe(Date.parse('2026-12-04T10:00:00Z') + 123.456)
  })

  it('epoch seconds sent with six decimals come back as exactly those microseconds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1_500_000_000_000_000, max: 2_000_000_000_000_000 }), (us) => {
        expect(run(datetimeField, us / 1e6)).toBe(us / 1000)
      }),
      { numRuns: 5000 },
    )
  })
})

describe('objects', () => {
  it('an absent input is missing, anything but an object is model_attributes_type', () => {
    expect(run(objectField, undefined)).toEqual(['missing'])
    expect(run(objectField, [])).toEqual(['model_attributes_type'])
    expect(run(objectField, 'x')).toEqual(['model_attributes_type'])
  })
})

describe('JSON depth', () => {
  const nest = (depth: number): unknown => {
    let v: unknown = 1
    for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v }
    return v
  }
  it('counts objects and arrays, not scalars', () => {
    expect(jsonDepthExceeds(nest(32), 32)).toBe(false)
    expect(jsonDepthExceeds(nest(33), 32)).toBe(true)
    expect(jsonDepthExceeds({ a: [1, 2, { b: 'x' }], c: null }, 3)).toBe(false)
    expect(jsonDepthExceeds({ a: [1, 2, { b: {} }] }, 3)).toBe(true)
    expect(jsonDepthExceeds('x', 1)).toBe(false)
  })
  it('a body far deeper than the limit is answered without a deep recursion', () => {
    expect(jsonDepthExceeds(nest(100_000), 256)).toBe(true)
  })
})
