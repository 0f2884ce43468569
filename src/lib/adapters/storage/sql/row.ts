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

export function toStringOrNull(v: unknown): string | null {
  if (v === null || v === undefined) return null
  return typeof v === 'string' ? v : String(v)
}

/** Times: SQLite ISO text, pg/mssql Date. Returns ISO-8601 UTC with milliseconds, or null. */
export function toIsoOrNull(v: unknown): string | null {
  if (v === null || v === undefined) return null
  if (v instanceof Date) return v.toISOString()
  if (typeof v === 'string') {
    const d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(v) ? v : `${v.replace(' ', 'T')}Z`)
    return Number.isNaN(d.getTime()) ? v : d.toISOString()
  }
  if (typeof v === 'number') return new Date(v).toISOString()
  return String(v)
}

export function toMsOrNull(v: unknown): number | null {
  const iso = toIsoOrNull(v)
  return iso === null ? null : Date.parse(iso)
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
