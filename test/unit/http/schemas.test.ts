import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

import { checkedReading, parsePacket, plainReading } from '../../../src/lib/http/schemas.js'
import { jsonDepthExceeds, type ValidationIssue } from '../../../src/lib/http/validation.js'

const UUID = '3f0e8d5c-2b1a-4c1e-9a57-1d2f3e4a5b6c'

// Values a device might send in each field, valid or not.
const anyValue = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(0, -0, 1e308, Number.MAX_SAFE_INTEGER, '23.5', '1e400', 'NaN', '0x10', true, false, null, '', [], {}),
)
const anyUuid = fc.oneof(fc.constant(UUID), fc.constant(UUID.toUpperCase()), fc.constant(`{${UUID}}`), fc.uuid(), fc.string(), fc.constant(42))
const reading = fc.record(
  { sensor_uuid: anyUuid, value: anyValue, sensor_ts: fc.oneof(anyValue, fc.constant(undefined)), sequence: fc.oneof(fc.constant(undefined), fc.constant(null), fc.integer()), msg_id: fc.oneof(fc.constant(undefined), fc.constant(null), fc.string()) },
  { requiredKeys: [] },
)

describe('packet readings: the fast path', () => {
  it('whenever it accepts a reading, the full check accepts it with the same result and no issue', () => {
    fc.assert(
      fc.property(reading, (raw) => {
        const fast = plainReading(raw)
        const issues: ValidationIssue[] = []
        const full = checkedReading(raw, 0, issues)
        if (fast !== undefined) {
          expect(issues).toEqual([])
          expect(fast).toEqual(full)
          expect(Object.is(fast.value, full?.value)).toBe(true)
        }
      }),
      { numRuns: 3000 },
    )
  })

  it('takes the common reading, and leaves every other shape to the full check', () => {
    expect(plainReading({ sensor_uuid: UUID, value: 21.5, sensor_ts: 1_700_000_000.25 })).toEqual({ sensorUuid: UUID, value: 21.5, sensorTs: 1_700_000_000.25, sequence: null, msgId: null })
    expect(plainReading({ sensor_uuid: UUID.toUpperCase(), value: -0 })).toEqual({ sensorUuid: UUID, value: 0, sensorTs: null, sequence: null, msgId: null })
    for (const raw of [{ sensor_uuid: UUID, value: '21.5' }, { sensor_uuid: UUID, value: true }, { sensor_uuid: UUID, value: Infinity }, { sensor_uuid: UUID, value: 1, msg_id: 'm' }, { sensor_uuid: UUID, value: 1, sequence: 3 }, { sensor_uuid: 'nope', value: 1 }, [UUID]])
      expect(plainReading(raw)).toBeUndefined()
  })

  it('a packet mixing both paths reports the invalid items at their index', () => {
    const body = { device_uuid: UUID, readings: [{ sensor_uuid: UUID, value: 1 }, { sensor_uuid: UUID, value: true }, { sensor_uuid: UUID, value: '2.5', sequence: 7 }] }
    expect(() => parsePacket(body, 1000)).toThrow()
    try {
      parsePacket(body, 1000)
    } catch (err) {
      expect((err as { issues: ValidationIssue[] }).issues.map((i) => i.loc)).toEqual([['body', 'readings', 1, 'value']])
    }
    const ok = parsePacket({ device_uuid: UUID, readings: [{ sensor_uuid: UUID, value: 1 }, { sensor_uuid: UUID, value: '2.5', sequence: 7 }] }, 1000)
    expect(ok.readings).toEqual([
      { sensorUuid: UUID, value: 1, sensorTs: null, sequence: null, msgId: null },
      { sensorUuid: UUID, value: 2.5, sensorTs: null, sequence: 7, msgId: null },
    ])
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
