import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

import { describeIssues, parseMqttReading } from '../../../src/lib/domain/ingest/mqtt-reading.js'

const T = '2026-12-04T12:00:00.123456Z'
const T_MS = Date.parse('2026-12-04T12:00:00.123Z') + 0.456

function codes(input: unknown): string[] {
  const r = parseMqttReading(input)
  return r.ok ? [] : r.issues.map((i) => `${i.path.join('.')}:${i.code}`)
}

describe('parseMqttReading (reference §9.2 payload)', () => {
  it('reads the legacy payload: sensorId as a numeric string or a JSON number, ISO time to the microsecond, msgId, metadata.sequence', () => {
    const r = parseMqttReading({ v: 1, sensorId: ' 42 ', value: '23.5', timestamp: T, type: 'reading', metadata: { sequence: '7', deviceId: 'x' }, msgId: 'abc' })
    expect(r).toEqual({ ok: true, value: { sensorId: 42, value: 23.5, timestamp: T_MS, deviceTsSeconds: T_MS / 1000, sequence: 7, msgId: 'abc' } })
    const n = parseMqttReading({ sensor_id: 42, value: 1, timestamp: T, msg_id: 'z' })
    expect(n.ok && n.value).toMatchObject({ sensorId: 42, msgId: 'z', sequence: null })
  })

  it('refuses what the legacy receiver refused, naming every problem', () => {
    expect(codes({ value: 1, timestamp: T })).toEqual(['sensorId:missing'])
    expect(codes({ sensorId: 'abc', value: 1, timestamp: T })).toEqual(['sensorId:int_parsing'])
    expect(codes({ sensorId: 0, value: 1, timestamp: T })).toEqual(['sensorId:greater_than_equal'])
    expect(codes({ sensorId: 1.5, value: 1, timestamp: T })).toEqual(['sensorId:int_from_float'])
    expect(codes({ sensorId: 1, value: true, timestamp: T })).toEqual(['value:float_type'])
    expect(codes({ sensorId: 1, value: 'NaN', timestamp: T })).toEqual(['value:float_parsing'])
    expect(codes({ sensorId: 1, value: 1e12, timestamp: T })).toEqual(['value:value_error'])
    expect(codes({ sensorId: 1, value: 1 })).toEqual(['timestamp:missing'])
    expect(codes({ sensorId: 1, value: 1, timestamp: '2024-02-30T00:00:00Z' })).toEqual(['timestamp:datetime_parsing'])
    expect(codes({ sensorId: 1, value: 1, timestamp: T, v: 11 })).toEqual(['v:less_than_equal'])
    expect(codes({ sensorId: 1, value: 1, timestamp: T, metadata: [] })).toEqual(['metadata:dict_type'])
    expect(codes({ sensorId: 1, value: 1, timestamp: T, msgId: 'a\u0000b' })).toEqual(['msgId:string_pattern_mismatch'])
    expect(codes([1, 2])).toEqual([':model_attributes_type'])
    expect(codes(null)).toEqual([':model_attributes_type'])
    expect(codes({})).toEqual(['sensorId:missing', 'value:missing', 'timestamp:missing'])
  })

  it('ignores a sequence it cannot read as an integer (as the legacy receiver did)', () => {
    const r = parseMqttReading({ sensorId: 1, value: 1, timestamp: T, metadata: { sequence: 'x' } })
    expect(r.ok && r.value.sequence).toBeNull()
  })

  it('describes issues in one line for the dead letter', () => {
    const r = parseMqttReading({ sensorId: 'x' })
    expect(r.ok).toBe(false)
    if (!r.ok) expect(describeIssues(r.issues)).toBe('sensorId: Input should be a valid integer, unable to parse string as an integer [int_parsing]; value: Field required [missing]; timestamp: Field required [missing]')
  })

  it('property: any positive safe-integer id, as a number or its decimal string, with any finite value in range, is accepted as given', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), fc.boolean(), fc.double({ min: -1e11, max: 1e11, noNaN: true }), fc.integer({ min: 0, max: 4_000_000_000_000 }), (id, asString, value, ms) => {
        const r = parseMqttReading({ sensorId: asString ? String(id) : id, value, timestamp: new Date(ms).toISOString() })
        expect(r.ok).toBe(true)
        if (r.ok) {
          expect(r.value.sensorId).toBe(id)
          expect(r.value.value).toBe(value === 0 ? 0 : value)
          expect(r.value.timestamp).toBe(ms)
        }
      }),
    )
  })

  it('property: arbitrary JSON never throws and is either a reading or a list of issues (never both, never empty)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const r = parseMqttReading(v)
        if (!r.ok) expect(r.issues.length).toBeGreaterThan(0)
        else expect(Number.isSafeInteger(r.value.sensorId) && r.value.sensorId >= 1 && Number.isFinite(r.value.value)).toBe(true)
      }),
    )
  })

  it('property: booleans, null, arrays and objects are never a sensorId or a value', () => {
    const notScalar = fc.oneof(fc.boolean(), fc.constant(null), fc.array(fc.integer()), fc.dictionary(fc.string(), fc.integer()))
    fc.assert(
      fc.property(notScalar, fc.boolean(), (bad, where) => {
        const r = parseMqttReading(where ? { sensorId: bad, value: 1, timestamp: T } : { sensorId: 1, value: bad, timestamp: T })
        expect(r.ok).toBe(false)
      }),
    )
  })
})
