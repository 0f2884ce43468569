import { isWithinPhysicalLimits } from './physical-limits.js'

export const GUARD_REJECTIONS = [
  'VALUE_NOT_FINITE',
  'VALUE_OUTSIDE_PHYSICAL_LIMITS',
  'TIMESTAMP_IN_FUTURE',
  'TIMESTAMP_TOO_OLD',
] as const
export type GuardRejection = (typeof GUARD_REJECTIONS)[number]

export const GUARD_DEFAULTS = {
  maxFutureSkewSeconds: 300,
  maxAgeDays: 30,
} as const

const MS_PER_SECOND = 1000
const MS_PER_DAY = 86_400_000

export interface GuardInput {
  value: number
  sensorType: string | null
  /** Device time in epoch ms; `null` when the device sent none (valid). */
  deviceTime: number | null
  /** Server time in epoch ms. */
  now: number
  /** Backfills carry old data on purpose, so they skip the age window. */
  backfill: boolean
  maxFutureSkewSeconds: number
  maxAgeDays: number
}

/**
 * Checks one well-formed reading (DESIGN §4.1). Returns `null` when it may be stored, otherwise the
 * first failing rejection code, in the order value, physical limits, future, age.
 */
export function guardReading(input: GuardInput): GuardRejection | null {
  if (!Number.isFinite(input.value)) return 'VALUE_NOT_FINITE'
  if (!isWithinPhysicalLimits(input.value, input.sensorType)) return 'VALUE_OUTSIDE_PHYSICAL_LIMITS'
  if (input.deviceTime === null) return null
  if (input.deviceTime > input.now + input.maxFutureSkewSeconds * MS_PER_SECOND) return 'TIMESTAMP_IN_FUTURE'
  if (!input.backfill && input.deviceTime < input.now - input.maxAgeDays * MS_PER_DAY) return 'TIMESTAMP_TOO_OLD'
  // Even a backfill must fit every engine's timestamp type (years 1 to 9999).
  if (!(input.deviceTime >= EARLIEST_STORABLE)) return 'TIMESTAMP_TOO_OLD'
  return null
}

/** 0001-01-01T00:00:00Z (Date.UTC would read year 1 as 1901): earlier times cannot be stored by every engine. */
const EARLIEST_STORABLE = -62_135_596_800_000
