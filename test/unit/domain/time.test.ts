import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

import { epochMicros, isoForWire, isoMicros, parseIsoMicros, roundToMicros, secondsToMs } from '../../../src/lib/domain/time.js'

describe('microsecond times', () => {
  it('rounds a float seconds time to the nearest microsecond (not truncated to the millisecond)', () => {
    expect(secondsToMs(1796386296.7999997)).toBe(1796386296800)
    expect(epochMicros(secondsToMs(1796388477.123456))).toBe(1796388477123456)
    expect(isoMicros(secondsToMs(1796388477.123456))).toBe('2026-12-04T12:47:57.123456Z')
    expect(isoMicros(secondsToMs(1796386296.7999997))).toBe('2026-12-04T12:11:36.800000Z')
  })

  it('answers keep milliseconds when there is nothing finer, six digits when there is', () => {
    expect(isoForWire(Date.parse('2026-12-04T12:00:00.123Z'))).toBe('2026-12-04T12:00:00.123Z')
    expect(isoForWire(Date.parse('2026-12-04T12:00:00.123Z') + 0.456)).toBe('2026-12-04T12:00:00.123456Z')
    // Before 1970 the floor, not the truncation, splits milliseconds and microseconds.
    expect(isoMicros(-0.5)).toBe('1969-12-31T23:59:59.999500Z')
  })

  it('parses ISO and SQL texts of any precision and zone, old millisecond rows included', () => {
    expect(parseIsoMicros('2026-12-04T12:00:00.123Z')).toBe(Date.parse('2026-12-04T12:00:00.123Z'))
    expect(parseIsoMicros('2026-12-04 12:00:00.123456+00')).toBe(roundToMicros(Date.parse('2026-12-04T12:00:00.123Z') + 0.456))
    expect(parseIsoMicros('2026-12-04 13:00:00.5+01:00')).toBe(Date.parse('2026-12-04T12:00:00.500Z'))
    expect(parseIsoMicros('2026-12-04 12:00:00')).toBe(Date.parse('2026-12-04T12:00:00Z'))
    expect(parseIsoMicros('2026-12-04T12:00:00.1234567Z')).toBe(roundToMicros(Date.parse('2026-12-04T12:00:00.123Z') + 0.457))
    expect(parseIsoMicros('infinity')).toBeNaN()
  })

  it('stored text reads back as the same time, to the microsecond (1900..2040: there a double holds epoch ms to under half a microsecond)', () => {
    fc.assert(
      fc.property(fc.integer({ min: -2_208_988_800_000_000, max: 2_208_988_800_000_000 }), (us) => {
        const ms = us / 1000
        expect(epochMicros(parseIsoMicros(isoMicros(ms)))).toBe(us)
        expect(epochMicros(parseIsoMicros(isoForWire(ms)))).toBe(us)
      }),
    )
  })
})
