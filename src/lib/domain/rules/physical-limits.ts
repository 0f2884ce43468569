/**
 * Per-sensor-type tables (reference §4.2, §6.4, §6.7). Types are matched trimmed and case-insensitive;
 * a type that is not listed has no physical limits and the default noise floor.
 */

export interface PhysicalLimits {
  min: number
  max: number
}

export interface NoiseFloor {
  /** Absolute change below which a delta is noise. */
  abs: number
  /** Relative change (fraction of the previous value) below which a delta is noise. */
  rel: number
}

export const PHYSICAL_LIMITS = {
  temperature: { min: -100, max: 500 },
  humidity: { min: 0, max: 100 },
  pressure: { min: 0, max: 2000 },
  air_quality: { min: 0, max: 10_000 },
  voltage: { min: 0, max: 1000 },
  power: { min: 0, max: 1_000_000 },
  ph: { min: 0, max: 14 },
} as const satisfies Record<string, PhysicalLimits>

export const DELTA_NOISE_FLOORS = {
  temperature: { abs: 0.5, rel: 0.02 },
  humidity: { abs: 2.0, rel: 0.03 },
  air_quality: { abs: 50, rel: 0.1 },
  voltage: { abs: 1.0, rel: 0.05 },
  power: { abs: 10, rel: 0.1 },
  pressure: { abs: 0.5, rel: 0.005 },
} as const satisfies Record<string, NoiseFloor>

export const DEFAULT_DELTA_NOISE_FLOOR = { abs: 0.1, rel: 0.01 } as const satisfies NoiseFloor

/** Zero is a plausible failure value (unplugged probe) only for these types. */
const SUSPICIOUS_ZERO_TYPES: ReadonlySet<string> = new Set(['temperature', 'humidity', 'pressure', 'ph'])

const SUSPICIOUS_ZERO_EPSILON = 1e-6

/** Trimmed, lower-cased sensor type; `null` for a missing or blank type. */
export function normaliseSensorType(sensorType: string | null | undefined): string | null {
  if (sensorType === null || sensorType === undefined) return null
  // Called for every reading; the distinct types are few.
  const known = NORMALISED.get(sensorType)
  if (known !== undefined) return known
  const trimmed = sensorType.trim().toLowerCase()
  const normalised = trimmed === '' ? null : trimmed
  if (NORMALISED.size < 1024) NORMALISED.set(sensorType, normalised)
  return normalised
}

const NORMALISED = new Map<string, string | null>()

// Object.hasOwn keeps types such as "constructor" or "__proto__" from matching Object.prototype.
function lookup<T>(table: Readonly<Record<string, T>>, sensorType: string | null | undefined): T | undefined {
  const key = normaliseSensorType(sensorType)
  if (key === null || !Object.hasOwn(table, key)) return undefined
  return table[key]
}

/** The physical limits of a sensor type, or `null` when the type is unknown (not limited). */
export function physicalLimitsFor(sensorType: string | null | undefined): PhysicalLimits | null {
  return lookup<PhysicalLimits>(PHYSICAL_LIMITS, sensorType) ?? null
}

/** The delta noise floor of a sensor type; unknown types get {@link DEFAULT_DELTA_NOISE_FLOOR}. */
export function deltaNoiseFloorFor(sensorType: string | null | undefined): NoiseFloor {
  return lookup<NoiseFloor>(DELTA_NOISE_FLOORS, sensorType) ?? DEFAULT_DELTA_NOISE_FLOOR
}

/** Whether `value` lies within the physical limits of its type (always true for unknown types). */
export function isWithinPhysicalLimits(value: number, sensorType: string | null | undefined): boolean {
  const limits = physicalLimitsFor(sensorType)
  return limits === null || (value >= limits.min && value <= limits.max)
}

/**
 * An exact zero (|v| ≤ 1e-6) from a temperature, humidity, pressure or pH sensor: counted in metrics as
 * suspicious, never rejected.
 */
export function isSuspiciousZero(value: number, sensorType: string | null | undefined): boolean {
  const key = normaliseSensorType(sensorType)
  return key !== null && SUSPICIOUS_ZERO_TYPES.has(key) && Math.abs(value) <= SUSPICIOUS_ZERO_EPSILON
}
