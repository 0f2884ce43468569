import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

import { floatJson, LEGACY_FLOATS } from '../../../src/lib/http/float-json.js'

describe('float fields on the wire', () => {
  it('marked fields keep .0, everything else is what JSON.stringify writes', () => {
    const write = floatJson({ a: true, nested: { b: true }, list: { c: true }, map: { '*': { d: true } } })
    const value = { a: 95, n: 95, nested: { b: 1000, e: 3 }, list: [{ c: 1 }, { c: 2.5 }, { c: null }], map: { '7': { d: 100, f: 1 } }, s: 'x', u: undefined, t: new Date(0) }
    expect(write(value)).toBe('{"a":95.0,"n":95,"nested":{"b":1000.0,"e":3},"list":[{"c":1.0},{"c":2.5},{"c":null}],"map":{"7":{"d":100.0,"f":1}},"s":"x","t":"1970-01-01T00:00:00.000Z"}')
    expect(write({ a: -0 })).toBe('{"a":0.0}')
    expect(write({ a: 1e21 })).toBe('{"a":1e+21}')
    expect(write({ a: Number.NaN })).toBe('{"a":null}')
    expect(write(null)).toBe('null')
  })

  it('parses back to exactly what JSON.stringify would have sent, whatever the shape', () => {
    const write = floatJson({ a: true, b: { '*': true }, c: { d: true } })
    const keys = fc.constantFrom('a', 'b', 'c', 'd', 'x', '__proto__', 'constructor')
    const shape = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, fc.double(), fc.integer(), fc.string(), fc.boolean(), fc.constant(null), fc.array(tie('value')), fc.dictionary(keys, tie('value'))),
    })).value
    fc.assert(
      fc.property(shape, (v) => {
        expect(JSON.parse(write(v))).toEqual(JSON.parse(JSON.stringify(v) ?? 'null'))
      }),
      { numRuns: 2000 },
    )
  })

  it('the legacy answers: status, diagnostics, health, packets', () => {
    expect(LEGACY_FLOATS.sensorStatus({ sensor_id: 3, alert_active: { id: 1, triggered_value: 95 }, warning_active: null, prediction_current: { predicted_value: 20, confidence: 1 } })).toBe(
      '{"sensor_id":3,"alert_active":{"id":1,"triggered_value":95.0},"warning_active":null,"prediction_current":{"predicted_value":20.0,"confidence":1.0}}',
    )
    const stats = { sensor_id: 1, total_readings: 2, delta_sensor: { avg_ms: 1000, min_ms: 1000, max_ms: 1000, std_ms: null, samples: 1 }, lag: { avg_ms: 5, min_ms: 5, max_ms: 5, std_ms: 0, samples: 2 }, expected_interval_ms: 1000, tolerance_ms: 100 }
    const text = LEGACY_FLOATS.diagnostics({ uptime_seconds: 12, summary: { total_readings: 2, avg_lag_ms: 5, max_lag_ms: null }, sensors: { '1': stats } })
    expect(text).toContain('"uptime_seconds":12.0')
    expect(text).toContain('"summary":{"total_readings":2,"avg_lag_ms":5.0,"max_lag_ms":null}')
    expect(text).toContain('"delta_sensor":{"avg_ms":1000.0,"min_ms":1000.0,"max_ms":1000.0,"std_ms":null,"samples":1}')
    expect(text).toContain('"std_ms":0.0,"samples":2},"expected_interval_ms":1000.0,"tolerance_ms":100.0}')
    expect(LEGACY_FLOATS.diagnostics({ sensor: stats })).toContain('"expected_interval_ms":1000.0')
    expect(LEGACY_FLOATS.ingestionHealth({ total_readings: 0, out_of_order_rate: 0 })).toBe('{"total_readings":0,"out_of_order_rate":0.0}')
    expect(LEGACY_FLOATS.packet({ inserted: 1, unknown_sensors: [], ingested_ts: 1796388477, receipts: [{ index: 0, status: 'stored' }] })).toBe(
      '{"inserted":1,"unknown_sensors":[],"ingested_ts":1796388477.0,"receipts":[{"index":0,"status":"stored"}]}',
    )
  })
})
