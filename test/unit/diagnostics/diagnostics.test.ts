import { describe, expect, it } from 'vitest'

import { createDiagnostics, pyFixed, pyFloatRepr, pyIsoUtc, pyPercent, pyRound } from '../../../src/lib/app/diagnostics.js'
import type { Clock } from '../../../src/lib/ports/clock.js'

const START = Date.UTC(2026, 0, 29, 12, 0, 0, 0)

function fakeClock(start = START): Clock & { advance(ms: number): void } {
  let t = start
  return {
    now: () => t,
    sleep: (ms) => {
      t += ms
      return Promise.resolve()
    },
    advance: (ms) => {
      t += ms
    },
  }
}

const PASS_REASONS = ['All metrics within acceptable thresholds']

describe('diagnostics: document shape', () => {
  it('is empty and PASS before any reading', () => {
    const clock = fakeClock()
    const diagnostics = createDiagnostics({ clock })
    clock.advance(1_234_567)
    expect(diagnostics.snapshot()).toEqual({
      timestamp: '2026-01-29T12:20:34.567000+00:00',
      uptime_seconds: 1234.57,
      summary: { total_readings: 0, total_sensors: 0, total_out_of_order: 0, avg_delta_sensor_ms: null, avg_lag_ms: null, max_lag_ms: null },
      health: 'PASS',
      health_reasons: PASS_REASONS,
      sensors: {},
    })
    expect(diagnostics.health()).toEqual({
      status: 'healthy',
      health: 'PASS',
      total_readings: 0,
      total_sensors: 0,
      avg_lag_ms: null,
      max_lag_ms: null,
      out_of_order_rate: 0,
      health_reasons: PASS_REASONS,
    })
  })

  it('computes deltas, lags and sample standard deviations (hand-computed)', () => {
    const clock = fakeClock()
    const diagnostics = createDiagnostics({ clock })
    const base = START - 10_000
    // sensor_ts 0, 1000, 2100, 3000 (deltas 1000, 1100, 900); lags 50, 60, 40, 250.
    const rows: Array<[number, number]> = [
      [0, 50],
      [1000, 60],
      [2100, 40],
      [3000, 250],
    ]
    rows.forEach(([ts, lag], i) => diagnostics.record({ sensorId: 7, sensorTsMs: base + ts, ingestedTsMs: base + ts + lag, sequence: i + 1 }))
    diagnostics.record({ sensorId: 8, ingestedTsMs: START })

    const doc = diagnostics.snapshot()
    expect(doc.summary).toEqual({
      total_readings: 5,
      total_sensors: 2,
      total_out_of_order: 0,
      avg_delta_sensor_ms: 1000,
      avg_lag_ms: 100,
      max_lag_ms: 250,
    })
    expect(doc.health).toBe('WARN')
    expect(doc.health_reasons).toEqual(['Max lag 250.0ms exceeds threshold 200.0ms'])
    expect('sensors' in doc && doc.sensors).toEqual({
      '7': {
        sensor_id: 7,
        total_readings: 4,
        out_of_order_count: 0,
        // mean 1000; deviations 0, 100, -100 -> sqrt(20000 / 2) = 100
        delta_sensor: { avg_ms: 1000, min_ms: 900, max_ms: 1100, std_ms: 100, samples: 3 },
        // mean 100; deviations -50, -40, -60, 150 -> sqrt(30200 / 3) = 100.33
        lag: { avg_ms: 100, min_ms: 40, max_ms: 250, std_ms: 100.33, samples: 4 },
        expected_interval_ms: 1000,
        tolerance_ms: 100,
      },
      '8': {
        sensor_id: 8,
        total_readings: 1,
        out_of_order_count: 0,
        delta_sensor: { avg_ms: null, min_ms: null, max_ms: null, std_ms: null, samples: 0 },
        lag: { avg_ms: null, min_ms: null, max_ms: null, std_ms: null, samples: 0 },
        expected_interval_ms: 1000,
        tolerance_ms: 100,
      },
    })
    expect(JSON.stringify(doc)).toContain('"sensors":{"7":{"sensor_id":7,')
  })

  it('keeps std null below two samples and rounds to 2 dp', () => {
    const diagnostics = createDiagnostics({ clock: fakeClock() })
    diagnostics.record({ sensorId: 1, sensorTsMs: 1000, ingestedTsMs: 1000 + 12.345678 })
    const doc = diagnostics.snapshot(1)
    expect('sensor' in doc && doc.sensor?.lag).toEqual({ avg_ms: 12.35, min_ms: 12.35, max_ms: 12.35, std_ms: null, samples: 1 })
  })

  it('returns one sensor, or sensor null and the legacy error', () => {
    const diagnostics = createDiagnostics({ clock: fakeClock() })
    diagnostics.record({ sensorId: 3, sensorTsMs: 0, ingestedTsMs: 10 })
    const one = diagnostics.snapshot(3)
    expect(one).not.toHaveProperty('sensors')
    expect(one).not.toHaveProperty('error')
    expect('sensor' in one && one.sensor?.sensor_id).toBe(3)
    expect(diagnostics.snapshot('3')).toMatchObject({ sensor: { sensor_id: 3 } })
    const missing = diagnostics.snapshot(99)
    expect(missing).toMatchObject({ sensor: null, error: 'Sensor 99 not found', summary: { total_sensors: 1 } })
    expect(missing).not.toHaveProperty('sensors')
  })

  it('keeps the last 100 samples per sensor', () => {
    const diagnostics = createDiagnostics({ clock: fakeClock() })
    // lags 0..149 ms: the last 100 are 50..149.
    for (let i = 0; i < 150; i++) diagnostics.record({ sensorId: 1, sensorTsMs: i * 1000, ingestedTsMs: i * 1000 + i })
    const doc = diagnostics.snapshot(1)
    expect('sensor' in doc && doc.sensor).toMatchObject({ total_readings: 150, lag: { min_ms: 50, max_ms: 149, avg_ms: 99.5, samples: 100 }, delta_sensor: { samples: 100 } })
  })
})

describe('diagnostics: order and health', () => {
  it('counts out-of-order sequences (≤ the last one) and FAILs above 1 %', () => {
    const diagnostics = createDiagnostics({ clock: fakeClock() })
    // 131 readings, sequences 1..129 then 129 and 5: two out of order -> 2/131 = 1.526..%.
    for (let s = 1; s <= 129; s++) diagnostics.record({ sensorId: 1, ingestedTsMs: s, sequence: s })
    diagnostics.record({ sensorId: 1, ingestedTsMs: 130, sequence: 129 })
    diagnostics.record({ sensorId: 1, ingestedTsMs: 131, sequence: 5 })
    const doc = diagnostics.snapshot()
    expect(doc.summary.total_out_of_order).toBe(2)
    expect(doc.health).toBe('FAIL')
    expect(doc.health_reasons).toEqual(['Out-of-order rate 1.53% exceeds threshold 1.00%'])
    expect(diagnostics.health()).toEqual({
      status: 'degraded',
      health: 'FAIL',
      total_readings: 131,
      total_sensors: 1,
      avg_lag_ms: null,
      max_lag_ms: null,
      out_of_order_rate: 0.0153,
      health_reasons: ['Out-of-order rate 1.53% exceeds threshold 1.00%'],
    })
  })

  it('passes at exactly 1 % and at exactly 200 ms', () => {
    const diagnostics = createDiagnostics({ clock: fakeClock() })
    for (let s = 1; s <= 99; s++) diagnostics.record({ sensorId: 1, sensorTsMs: s * 1000, ingestedTsMs: s * 1000 + 200, sequence: s })
    diagnostics.record({ sensorId: 1, sensorTsMs: 100_000, ingestedTsMs: 100_000, sequence: 1 })
    expect(diagnostics.health()).toMatchObject({ status: 'healthy', health: 'PASS', out_of_order_rate: 0.01, max_lag_ms: 200, health_reasons: PASS_REASONS })
  })

  it('lists both reasons, lag first, and reports FAIL', () => {
    const diagnostics = createDiagnostics({ clock: fakeClock() })
    diagnostics.record({ sensorId: 1, sensorTsMs: 0, ingestedTsMs: 250.5, sequence: 2 })
    diagnostics.record({ sensorId: 1, sensorTsMs: 1000, ingestedTsMs: 1010, sequence: 1 })
    const doc = diagnostics.snapshot()
    expect(doc.health).toBe('FAIL')
    expect(doc.health_reasons).toEqual(['Max lag 250.5ms exceeds threshold 200.0ms', 'Out-of-order rate 50.00% exceeds threshold 1.00%'])
    expect(diagnostics.health()).toMatchObject({ status: 'degraded', out_of_order_rate: 0.5, max_lag_ms: 250.5, avg_lag_ms: 130.25 })
  })

  it('tracks sequences per sensor', () => {
    const diagnostics = createDiagnostics({ clock: fakeClock() })
    diagnostics.record({ sensorId: 1, ingestedTsMs: 0, sequence: 10 })
    diagnostics.record({ sensorId: 2, ingestedTsMs: 0, sequence: 1 })
    diagnostics.record({ sensorId: 1, ingestedTsMs: 0, sequence: 11 })
    diagnostics.record({ sensorId: 2, ingestedTsMs: 0, sequence: null })
    expect(diagnostics.snapshot().summary.total_out_of_order).toBe(0)
  })
})

describe('diagnostics: bounded memory', () => {
  it('forgets the least recently seen sensor beyond the cap; totals keep counting', () => {
    const diagnostics = createDiagnostics({ clock: fakeClock(), maxSensors: 3 })
    for (const id of [1, 2, 3, 1, 4]) diagnostics.record({ sensorId: id, sensorTsMs: 0, ingestedTsMs: 5 })
    const doc = diagnostics.snapshot()
    expect(Object.keys('sensors' in doc ? doc.sensors : {}).sort()).toEqual(['1', '3', '4'])
    expect(doc.summary).toMatchObject({ total_readings: 5, total_sensors: 3 })
    expect(diagnostics.snapshot(2)).toMatchObject({ sensor: null, error: 'Sensor 2 not found' })
  })

  it('holds at most 10 000 sensors by default', () => {
    const diagnostics = createDiagnostics({ clock: fakeClock() })
    for (let id = 0; id < 10_500; id++) diagnostics.record({ sensorId: id, ingestedTsMs: 0 })
    expect(diagnostics.health()).toMatchObject({ total_sensors: 10_000, total_readings: 10_500 })
  })
})

describe('Python number formatting', () => {
  it('rounds exact ties to even like round() and format()', () => {
    expect(pyFixed(0.125, 2)).toBe('0.12')
    expect(pyFixed(0.375, 2)).toBe('0.38')
    expect(pyFixed(-0.125, 2)).toBe('-0.12')
    expect(pyRound(0.125, 2)).toBe(0.12)
    expect(pyRound(2.675, 2)).toBe(2.67) // 2.67499999... in binary
    expect(pyRound(1.005, 2)).toBe(1)
    expect(pyRound(1234.5678, 2)).toBe(1234.57)
  })

  it('formats percentages and float reprs', () => {
    expect(pyPercent(0.0153)).toBe('1.53%')
    expect(pyPercent(0.01)).toBe('1.00%')
    expect(pyPercent(0.01125)).toBe('1.12%')
    expect(pyFloatRepr(200)).toBe('200.0')
    expect(pyFloatRepr(250.25)).toBe('250.25')
    expect(pyFloatRepr(1e16)).toBe('1e+16')
  })

  it('writes timestamps like datetime.isoformat() in UTC', () => {
    expect(pyIsoUtc(Date.UTC(2026, 0, 29, 12, 0, 0, 0))).toBe('2026-01-29T12:00:00+00:00')
    expect(pyIsoUtc(Date.UTC(2026, 0, 29, 12, 0, 0, 5))).toBe('2026-01-29T12:00:00.005000+00:00')
  })
})
