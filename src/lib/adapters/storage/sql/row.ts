import { isoForWire, parseIsoMicros, roundToMicros, splitMicros } from '../../../domain/time.js'
import { BugError } from '../../../errors/index.js'

/** Decoders for values as the three drivers return them (SQLite text/0-1, pg Date/boolean/object, mssql Date/boolean/string). */
export function toNumber(v: unknown): number {
  if (typeof v === 'number') return v
  if (typeof v === 'bigint') {
    const n = Number(v)
    if (!Number.isSafeInteger(n)) throw new BugError(`64-bit id ${v} is beyond the safe integer range`)
    return n
  }
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v)
    if (Number.isFinite(n)) {
      if (/^-?\d+$/.test(v.trim()) && !Number.isSafeInteger(n)) throw new BugError(`64-bit id ${v} is beyond the safe integer range`)
      return n
    }
  }
  throw new BugError(`expected a number from the database, got ${typeof v} ${String(v)}`)
}

export function toNumberOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : toNumber(v)
}

export function toBool(v: unknown): boolean {
  if (typeof v === 'boolean') return v
  if (typeof v === 'number') return v !== 0
  if (typeof v === 'bigint') return v !== 0n
  if (typeof v === 'string') return v === '1' || v.toLowerCase() === 'true'
  return Boolean(v)
}

/** Text columns: strings as they are; numbers (SQLite affinity), dates and buffers in their own text form. */
export function toStringOrNull(v: unknown): string | null {
  if (v === null || v === undefined) return null
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean' || typeof v === 'symbol') return String(v)
  if (v instanceof Date || v instanceof Uint8Array) return String(v)
  // Another object in a text column is no driver's output: '[object Object]' would hide the bug.
  throw new BugError(`expected text from the database, got ${Object.prototype.toString.call(v)}`)
}

/** A driver's Date with the microseconds below its millisecond (tedious reads `nanosecondsDelta`, our pg parser sets it too), in seconds. */
type PreciseDate = Date & { nanosecondsDelta?: number; nanosecondDelta?: number }

/** Times: SQLite ISO text, pg/mssql Date (sub-millisecond part kept). Epoch ms with microseconds, or null. */
export function toMsOrNull(v: unknown): number | null {
  if (v === null || v === undefined) return null
  if (v instanceof Date) {
    const d = v as PreciseDate
    const below = d.nanosecondsDelta ?? d.nanosecondDelta ?? 0
    return below === 0 ? d.getTime() : roundToMicros(d.getTime() + below * 1000)
  }
  if (typeof v === 'number') return v
  if (typeof v === 'string') {
    const ms = parseIsoMicros(v)
    if (!Number.isNaN(ms)) return ms
    const d = Date.parse(v)
    return Number.isNaN(d) ? null : d
  }
  return null
}

/** Times as answers carry them: ISO-8601 UTC, milliseconds, six digits when the time has microseconds. */
export function toIsoOrNull(v: unknown): string | null {
  if (v === null || v === undefined) return null
  const ms = toMsOrNull(v)
  // Not a time: passed through as text, as stored.
  return ms === null ? toStringOrNull(v) : isoForWire(ms)
}

/**
 * A time as a statement parameter: a Date, with the microseconds below its millisecond as tedious's
 * `nanosecondDelta` (SQL Server datetime2 keeps them; the SQLite executor writes them as six digits).
 */
export function timeParam(ms: number): Date {
  const { wholeMs, micros } = splitMicros(ms)
  const d = new Date(wholeMs) as PreciseDate
  if (micros !== 0) d.nanosecondDelta = micros / 1e6
  return d
}

/** The microseconds below the millisecond a Date parameter carries (see timeParam), 0 when none. */
export function microsOf(d: Date): number {
  const below = (d as PreciseDate).nanosecondDelta ?? (d as PreciseDate).nanosecondsDelta ?? 0
  return Math.round(below * 1e6)
}

/** JSON columns: pg returns objects, the others text. */
export function toJson(v: unknown): unknown {
  if (v === null || v === undefined) return null
  if (typeof v === 'string') {
    try {
      return JSON.parse(v) as unknown
    } catch {
      return v
    }
  }
  return v
}

/** UUIDs: lower-case hyphenated (mssql returns upper-case uniqueidentifiers). */
export function toUuid(v: unknown): string {
  return String(v).toLowerCase()
}
