import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

import type { ParseIssue } from '../../../../src/lib/domain/ingest/issues.js'
import { checkedReading, parseIdReading, parseIdReadings, parsePacket, plainReading } from '../../../../src/lib/domain/ingest/readings.js'

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
        const issues: ParseIssue[] = []
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
    const opts = { maxItems: 1000, transport: 'http' } as const
    const body = { device_uuid: UUID, readings: [{ sensor_uuid: UUID, value: 1 }, { sensor_uuid: UUID, value: true }, { sensor_uuid: UUID, value: '2.5', sequence: 7 }] }
    const bad = parsePacket(body, opts)
    expect(bad.ok).toBe(false)
    if (!bad.ok) expect(bad.issues.map((i) => [i.path, i.code])).toEqual([[['readings', 1, 'value'], 'float_type']])
    const ok = parsePacket({ device_uuid: UUID, readings: [{ sensor_uuid: UUID, value: 1 }, { sensor_uuid: UUID, value: '2.5', sequence: 7 }] }, opts)
    expect(ok).toEqual({
      ok: true,
      value: {
        deviceUuid: UUID,
        ts: null,
        transport: 'http',
        readings: [
          { sensorUuid: UUID, value: 1, sensorTs: null, sequence: null, msgId: null },
          { sensorUuid: UUID, value: 2.5, sensorTs: null, sequence: 7, msgId: null },
        ],
      },
    })
  })
})

describe('packets and readings by id', () => {
  const opts = { maxItems: 2, transport: 'mqtt' } as const
  const issuesOf = (r: { ok: boolean; issues?: ParseIssue[] }) => (r.ok ? [] : (r.issues ?? []).map((i) => ({ path: i.path, code: i.code })))

  it('the transport is the caller\'s; the packet time is epoch ms', () => {
    expect(parsePacket({ device_uuid: UUID, ts: '2026-12-04T10:00:00Z' }, opts)).toEqual({ ok: true, value: { deviceUuid: UUID, ts: Date.parse('2026-12-04T10:00:00Z'), readings: [], transport: 'mqtt' } })
  })

  it('reports neutral issues with paths from the input root', () => {
    expect(issuesOf(parsePacket({ readings: [{ value: 1 }, 5, { sensor_uuid: 'x', value: 1, sequence: 1.5 }] }, { ...opts, maxItems: 5 }))).toEqual([
      { path: ['device_uuid'], code: 'missing' },
      { path: ['readings', 0, 'sensor_uuid'], code: 'missing' },
      { path: ['readings', 1], code: 'model_attributes_type' },
      { path: ['readings', 2, 'sensor_uuid'], code: 'uuid_parsing' },
      { path: ['readings', 2, 'sequence'], code: 'int_from_float' },
    ])
    expect(issuesOf(parsePacket({ device_uuid: UUID, readings: [1, 2, 3] }, opts))).toEqual([{ path: ['readings'], code: 'too_long' }])
    expect(issuesOf(parsePacket([], opts))).toEqual([{ path: [], code: 'model_attributes_type' }])
    expect(issuesOf(parseIdReading({ sensor_id: 0, value: 'abc', timestamp: 'soon' }))).toEqual([
      { path: ['sensor_id'], code: 'greater_than_equal' },
      { path: ['value'], code: 'float_parsing' },
      { path: ['timestamp'], code: 'datetime_parsing' },
    ])
    expect(issuesOf(parseIdReadings({ readings: [{ sensor_id: 1, value: 1 }, { sensor_id: '2' }] }, opts))).toEqual([{ path: ['readings', 1, 'value'], code: 'missing' }])
  })

  it('readings by id: integers and numbers as strings, bulk defaults to none', () => {
    expect(parseIdReading({ sensor_id: '7', value: '21.5', timestamp: null })).toEqual({ ok: true, value: { sensorId: 7, value: 21.5, timestamp: null } })
    expect(parseIdReadings({}, opts)).toEqual({ ok: true, value: [] })
  })
})
