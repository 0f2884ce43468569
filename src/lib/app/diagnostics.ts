import type { Logger } from '../log/index.js'
import type { Clock } from '../ports/clock.js'

/**
 * Per-process ingestion timing metrics, the `/api/ingestion/diagnostics` and `/api/ingestion/health`
 * documents of reference §1.12, fed by every transport (the legacy service fed them from
 * `/ingest/packets` only). Field names, rounding and reason strings follow the original exactly.
 */

export type SensorKey = number | string

export interface ReadingTiming {
  sensorId: SensorKey
  /** The device's own time of the reading (epoch ms), when it sent one. */
  sensorTsMs?: number | null | undefined
  /** When we received it (epoch ms). */
  ingestedTsMs: number
  sequence?: number | null | undefined
}

export interface SampleStats {
  avg_ms: number | null
  min_ms: number | null
  max_ms: number | null
  std_ms: number | null
  samples: number
}

export interface SensorStats {
  sensor_id: SensorKey
  total_readings: number
  out_of_order_count: number
  delta_sensor: SampleStats
  lag: SampleStats
  expected_interval_ms: number
  tolerance_ms: number
}

export type HealthLevel = 'PASS' | 'WARN' | 'FAIL'

export interface DiagnosticsSummary {
  total_readings: number
  total_sensors: number
  total_out_of_order: number
  avg_delta_sensor_ms: number | null
  avg_lag_ms: number | null
  max_lag_ms: number | null
}

interface SnapshotBase {
  timestamp: string
  uptime_seconds: number
  summary: DiagnosticsSummary
  health: HealthLevel
  health_reasons: string[]
}

export type DiagnosticsSnapshot =
  | (SnapshotBase & { sensors: Record<string, SensorStats> })
  | (SnapshotBase & { sensor: SensorStats })
  | (SnapshotBase & { sensor: null; error: string })

export interface IngestionHealth {
  status: 'healthy' | 'degraded'
  health: HealthLevel
  total_readings: number
  total_sensors: number
  avg_lag_ms: number | null
  max_lag_ms: number | null
  out_of_order_rate: number
  health_reasons: string[]
}

export interface Diagnostics {
  record(reading: ReadingTiming): void
  /** The diagnostics document: every sensor, or one (`sensor` + `error` when unknown). */
  snapshot(sensorId?: SensorKey): DiagnosticsSnapshot
  health(): IngestionHealth
}

export interface DiagnosticsOptions {
  clock: Clock
  /** `HIGH_LAG` warnings go here (at most once a minute per sensor). */
  logger?: Logger | undefined
  /** Sensors tracked; beyond it the least recently seen is forgotten. Default 10 000. */
  maxSensors?: number | undefined
  /** Samples kept per sensor and series. Default 100 (the original's). */
  samplesPerSensor?: number | undefined
}

export const MAX_ACCEPTABLE_LAG_MS = 200
export const MAX_ACCEPTABLE_OUT_OF_ORDER_RATE = 0.01
const EXPECTED_INTERVAL_MS = 1000
const TOLERANCE_MS = 100
const HIGH_LAG_LOG_INTERVAL_MS = 60_000

/** The last `capacity` values, oldest overwritten first. */
class Ring {
  private readonly values: number[] = []
  private next = 0
  constructor(private readonly capacity: number) {}

  push(value: number): void {
    if (this.values.length < this.capacity) this.values.push(value)
    else this.values[this.next] = value
    this.next = (this.next + 1) % this.capacity
  }

  all(): readonly number[] {
    return this.values
  }
}

interface SensorTrack {
  id: SensorKey
  lastSensorTsMs: number | undefined
  lastSequence: number | undefined
  totalReadings: number
  outOfOrder: number
  deltas: Ring
  lags: Ring
  lastHighLagLogMs: number
  /** The reading count when this sensor was last moved to the back of the recency order. */
  movedAt: number
}

/** Python's `round(x, digits)` / `format(x, '.Nf')`: correctly rounded, exact ties to even. */
export function pyFixed(x: number, digits: number): string {
  if (!Number.isFinite(x) || Math.abs(x) >= 1e21) return String(x)
  const fixed = x.toFixed(digits)
  // toFixed rounds exact ties away from zero; Python rounds them to even. Both see the exact binary value,
  // whose full expansion is at most ~100 digits for the magnitudes met here.
  const exact = Math.abs(x).toFixed(100)
  const dot = exact.indexOf('.')
  const rest = exact.slice(dot + 1 + digits)
  if (!/^50*$/.test(rest)) return fixed
  const truncated = exact.slice(0, dot + 1 + digits).replace(/\.$/, '')
  const lastDigit = Number(truncated.at(-1))
  if (lastDigit % 2 === 1) return fixed
  return (x < 0 && Number(truncated) !== 0 ? '-' : '') + truncated
}

export function pyRound(x: number, digits: number): number {
  return Number(pyFixed(x, digits))
}

/** Python's `repr(float)` for the magnitudes of a lag: `250.0`, `250.5`, `1e+16`. */
export function pyFloatRepr(x: number): string {
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : x < 0 ? '-inf' : 'nan'
  if (Math.abs(x) >= 1e16) return x.toExponential().replace(/e([+-])(\d)$/, 'e$10$2')
  if (Number.isInteger(x)) return `${x}.0`
  return String(x)
}

/** Python's `format(x, '.2%')`. */
export function pyPercent(x: number, digits = 2): string {
  return `${pyFixed(x * 100, digits)}%`
}

/** Python's `datetime.now(timezone.utc).isoformat()`: microseconds unless zero, `+00:00`. */
export function pyIsoUtc(epochMs: number): string {
  const iso = new Date(epochMs).toISOString() // 2024-01-02T03:04:05.678Z
  const base = iso.slice(0, 19)
  const micros = Math.round((epochMs - Math.floor(epochMs / 1000) * 1000) * 1000)
  return micros === 0 ? `${base}+00:00` : `${base}.${String(Math.min(micros, 999_999)).padStart(6, '0')}+00:00`
}

/** Neumaier-compensated mean, close to Python's exact `statistics.mean`. */
function mean(values: readonly number[]): number {
  let sum = 0
  let compensation = 0
  for (const v of values) {
    const t = sum + v
    compensation += Math.abs(sum) >= Math.abs(v) ? sum - t + v : v - t + sum
    sum = t
  }
  return (sum + compensation) / values.length
}

/** Sample standard deviation (n − 1), as `statistics.stdev`. */
function stdev(values: readonly number[]): number {
  const m = mean(values)
  let squares = 0
  for (const v of values) squares += (v - m) ** 2
  return Math.sqrt(squares / (values.length - 1))
}

function sampleStats(values: readonly number[]): SampleStats {
  if (values.length === 0) return { avg_ms: null, min_ms: null, max_ms: null, std_ms: null, samples: 0 }
  let min = Number.POSITIVE_INFINITY
  let max = Number.NEGATIVE_INFINITY
  for (const v of values) {
    if (v < min) min = v
    if (v > max) max = v
  }
  return {
    avg_ms: pyRound(mean(values), 2),
    min_ms: pyRound(min, 2),
    max_ms: pyRound(max, 2),
    std_ms: values.length > 1 ? pyRound(stdev(values), 2) : null,
    samples: values.length,
  }
}

function sensorStats(track: SensorTrack): SensorStats {
  return {
    sensor_id: track.id,
    total_readings: track.totalReadings,
    out_of_order_count: track.outOfOrder,
    delta_sensor: sampleStats(track.deltas.all()),
    lag: sampleStats(track.lags.all()),
    expected_interval_ms: EXPECTED_INTERVAL_MS,
    tolerance_ms: TOLERANCE_MS,
  }
}

export function createDiagnostics(options: DiagnosticsOptions): Diagnostics {
  const { clock, logger } = options
  const maxSensors = Math.max(1, options.maxSensors ?? 10_000)
  const samples = Math.max(1, options.samplesPerSensor ?? 100)
  const startedMs = clock.now()
  // Map order = least recently seen first (a sensor is moved to the end on each reading).
  const sensors = new Map<string, SensorTrack>()
  // Process-wide counters: a forgotten sensor's readings still count in the rates.
  let totalReadings = 0
  let totalOutOfOrder = 0

  // Recency is the Map's order: a sensor is moved to the back when seen, but at most once per
  // maxSensors/2 readings (a delete + set per reading was a measurable share of the ingest path). The
  // front is then the least recently seen sensor, give or take that many readings.
  let tick = 0
  const moveEvery = Math.max(1, maxSensors / 2)
  const track = (id: SensorKey): SensorTrack => {
    const key = String(id)
    tick++
    let t = sensors.get(key)
    if (t) {
      if (tick - t.movedAt < moveEvery) return t
      sensors.delete(key)
    } else {
      for (const oldest of sensors.keys()) {
        if (sensors.size < maxSensors) break
        sensors.delete(oldest)
      }
      t = {
        id,
        lastSensorTsMs: undefined,
        lastSequence: undefined,
        totalReadings: 0,
        outOfOrder: 0,
        deltas: new Ring(samples),
        lags: new Ring(samples),
        lastHighLagLogMs: Number.NEGATIVE_INFINITY,
        movedAt: 0,
      }
    }
    t.movedAt = tick
    sensors.set(key, t)
    return t
  }

  const aggregate = () => {
    const deltas: number[] = []
    const lags: number[] = []
    for (const t of sensors.values()) {
      for (const v of t.deltas.all()) deltas.push(v)
      for (const v of t.lags.all()) lags.push(v)
    }
    let maxLag: number | null = null
    for (const v of lags) if (maxLag === null || v > maxLag) maxLag = v
    const avgDelta = deltas.length > 0 ? pyRound(mean(deltas), 2) : null
    const avgLag = lags.length > 0 ? pyRound(mean(lags), 2) : null
    const maxLagRounded = maxLag === null ? null : pyRound(maxLag, 2)

    let health: HealthLevel = 'PASS'
    const reasons: string[] = []
    if (maxLagRounded !== null && maxLagRounded > MAX_ACCEPTABLE_LAG_MS) {
      health = 'WARN'
      reasons.push(`Max lag ${pyFloatRepr(maxLagRounded)}ms exceeds threshold ${pyFloatRepr(MAX_ACCEPTABLE_LAG_MS)}ms`)
    }
    if (totalReadings > 0) {
      const rate = totalOutOfOrder / totalReadings
      if (rate > MAX_ACCEPTABLE_OUT_OF_ORDER_RATE) {
        health = 'FAIL'
        reasons.push(`Out-of-order rate ${pyPercent(rate)} exceeds threshold ${pyPercent(MAX_ACCEPTABLE_OUT_OF_ORDER_RATE)}`)
      }
    }
    if (reasons.length === 0) reasons.push('All metrics within acceptable thresholds')
    const summary: DiagnosticsSummary = {
      total_readings: totalReadings,
      total_sensors: sensors.size,
      total_out_of_order: totalOutOfOrder,
      avg_delta_sensor_ms: avgDelta,
      avg_lag_ms: avgLag,
      max_lag_ms: maxLagRounded,
    }
    return { summary, health, reasons }
  }

  return {
    record(reading) {
      const t = track(reading.sensorId)
      const sensorTs = reading.sensorTsMs
      if (typeof sensorTs === 'number' && Number.isFinite(sensorTs)) {
        const lag = reading.ingestedTsMs - sensorTs
        t.lags.push(lag)
        if (t.lastSensorTsMs !== undefined) t.deltas.push(sensorTs - t.lastSensorTsMs)
        t.lastSensorTsMs = sensorTs
        if (logger && lag > MAX_ACCEPTABLE_LAG_MS && reading.ingestedTsMs - t.lastHighLagLogMs >= HIGH_LAG_LOG_INTERVAL_MS) {
          t.lastHighLagLogMs = reading.ingestedTsMs
          logger.warn({ sensorId: reading.sensorId, lagMs: lag, thresholdMs: MAX_ACCEPTABLE_LAG_MS }, 'HIGH_LAG')
        }
      }
      const sequence = reading.sequence
      if (typeof sequence === 'number' && Number.isFinite(sequence)) {
        if (t.lastSequence !== undefined && sequence <= t.lastSequence) {
          t.outOfOrder++
          totalOutOfOrder++
        }
        t.lastSequence = sequence
      }
      t.totalReadings++
      totalReadings++
    },

    snapshot(sensorId) {
      const nowMs = clock.now()
      const { summary, health, reasons } = aggregate()
      const base: SnapshotBase = {
        timestamp: pyIsoUtc(nowMs),
        uptime_seconds: pyRound((nowMs - startedMs) / 1000, 2),
        summary,
        health,
        health_reasons: reasons,
      }
      if (sensorId === undefined) {
        return { ...base, sensors: Object.fromEntries([...sensors].map(([key, t]) => [key, sensorStats(t)])) }
      }
      const t = sensors.get(String(sensorId))
      return t ? { ...base, sensor: sensorStats(t) } : { ...base, sensor: null, error: `Sensor ${sensorId} not found` }
    },

    health() {
      const { summary, health, reasons } = aggregate()
      return {
        status: health === 'PASS' ? 'healthy' : 'degraded',
        health,
        total_readings: summary.total_readings,
        total_sensors: summary.total_sensors,
        avg_lag_ms: summary.avg_lag_ms,
        max_lag_ms: summary.max_lag_ms,
        out_of_order_rate: totalReadings > 0 ? pyRound(totalOutOfOrder / totalReadings, 4) : 0,
        health_reasons: reasons,
      }
    },
  }
}
