import { roundToMicros } from '../time.js'
import { normaliseUuid } from '../uuid.js'
import type { IssuePath, ParseIssue } from './issues.js'

/*
 * The field rules every transport shares (DESIGN §3): one place decides what a number, an integer, a
 * timestamp, an id and a UUID are. Each rule returns the value, or undefined after pushing an issue.
 */

const PLAIN_DECIMAL = /^\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*$/
const INTEGER = /^\s*[+-]?\d+\s*$/

/**
 * Numbers: a JSON number, or a string holding a plain finite decimal ("23.5") for legacy devices.
 * Never booleans, null, hex, "NaN", "Infinity", exponent strings, or values that overflow. Nothing
 * else is coerced.
 */
export function strictNumber(v: unknown, path: IssuePath, issues: ParseIssue[]): number | undefined {
  if (typeof v === 'number') {
    if (Number.isFinite(v)) return v === 0 ? 0 : v
    issues.push({ path, code: 'finite_number', msg: 'Input should be a finite number', input: String(v) })
    return undefined
  }
  if (typeof v === 'string') {
    if (PLAIN_DECIMAL.test(v)) {
      const n = Number(v)
      if (Number.isFinite(n)) return n === 0 ? 0 : n
      issues.push({ path, code: 'finite_number', msg: 'Input should be a finite number', input: v })
      return undefined
    }
    issues.push({ path, code: 'float_parsing', msg: 'Input should be a valid number, unable to parse string as a number', input: v })
    return undefined
  }
  issues.push({ path, code: 'float_type', msg: 'Input should be a valid number', input: v })
  return undefined
}

/** Integers: a safe-integer JSON number or decimal string; `min` is pydantic's `ge`. */
export function strictInt(v: unknown, path: IssuePath, issues: ParseIssue[], min?: number): number | undefined {
  let n: number | undefined
  if (typeof v === 'number' && Number.isSafeInteger(v)) n = v
  else if (typeof v === 'string' && INTEGER.test(v) && Number.isSafeInteger(Number(v))) n = Number(v)
  if (n === undefined) {
    if (typeof v === 'number' && Number.isFinite(v)) issues.push({ path, code: 'int_from_float', msg: 'Input should be a valid integer, got a number with a fractional part', input: v })
    else if (typeof v === 'string') issues.push({ path, code: 'int_parsing', msg: 'Input should be a valid integer, unable to parse string as an integer', input: v })
    else issues.push({ path, code: 'int_type', msg: 'Input should be a valid integer', input: v })
    return undefined
  }
  if (min !== undefined && n < min) {
    issues.push({ path, code: 'greater_than_equal', msg: `Input should be greater than or equal to ${min}`, input: v, ctx: { ge: min } })
    return undefined
  }
  return n === 0 ? 0 : n
}

/** UUIDs: upper-case, hyphenless and braced forms are accepted and normalised to lower-case hyphenated. */
export function uuidField(v: unknown, path: IssuePath, issues: ParseIssue[]): string | undefined {
  if (typeof v !== 'string') {
    issues.push({ path, code: 'uuid_type', msg: 'UUID input should be a string, bytes or UUID object', input: v })
    return undefined
  }
  const u = normaliseUuid(v)
  if (u === undefined) issues.push({ path, code: 'uuid_parsing', msg: 'Input should be a valid UUID, invalid character or length', input: v })
  return u
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** Ids: NUL, lone surrogates and control characters are refused; the rest is NFC-normalised. */
export function idString(v: unknown, path: IssuePath, issues: ParseIssue[], maxLength = 255): string | undefined {
  if (typeof v !== 'string') {
    issues.push({ path, code: 'string_type', msg: 'Input should be a valid string', input: v })
    return undefined
  }
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (LONE_SURROGATE.test(v) || /[\u0000-\u001f\u007f]/.test(v)) {
    issues.push({ path, code: 'string_pattern_mismatch', msg: 'String should not contain control characters or lone surrogates', input: v })
    return undefined
  }
  const s = v.normalize('NFC')
  if (s.length > maxLength) {
    issues.push({ path, code: 'string_too_long', msg: `String should have at most ${maxLength} characters`, input: v, ctx: { max_length: maxLength } })
    return undefined
  }
  return s
}

const ISO_DATETIME = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?\s*(Z|[+-]\d{2}:?\d{2})?)?$/i

/**
 * Datetimes as the original accepted them: ISO-8601 with or without offset (naive = UTC), a date alone
 * (midnight UTC), "YYYY-MM-DD HH:MM", or Unix epoch numbers (seconds, or milliseconds by magnitude).
 * Returns epoch ms rounded to the nearest microsecond. Impossible dates (2024-02-30) are refused, not
 * rolled over.
 */
export function datetimeField(v: unknown, path: IssuePath, issues: ParseIssue[]): number | undefined {
  const fail = (): undefined => {
    issues.push({ path, code: 'datetime_parsing', msg: 'Input should be a valid datetime', input: v })
    return undefined
  }
  if (typeof v === 'number' || (typeof v === 'string' && PLAIN_DECIMAL.test(v))) {
    const n = typeof v === 'number' ? v : Number(v)
    if (!Number.isFinite(n)) return fail()
    // pydantic: above 2e10 the number is milliseconds.
    const ms = Math.abs(n) > 2e10 ? n : n * 1000
    return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? roundToMicros(ms) : fail()
  }
  if (typeof v !== 'string') return fail()
  const m = ISO_DATETIME.exec(v.trim())
  if (!m) return fail()
  const [, y, mo, d, h, mi, s, frac, tz] = m
  const year = Number(y)
  const month = Number(mo)
  const day = Number(d)
  const hour = Number(h ?? '0')
  const minute = Number(mi ?? '0')
  const second = Number(s ?? '0')
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return fail()
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate()
  if (day > daysInMonth) return fail()
  let ms = Date.UTC(year, month - 1, day, hour, minute, second) + (frac ? Number(frac) * 1000 : 0)
  if (tz && tz.toUpperCase() !== 'Z') {
    const sign = tz.startsWith('-') ? -1 : 1
    const digits = tz.slice(1).replace(':', '')
    const offsetMin = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4))
    ms -= sign * offsetMin * 60_000
  }
  return Number.isFinite(ms) ? roundToMicros(ms) : fail()
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** An object to read fields from; an absent input (an empty body) is `missing`, as FastAPI says. */
export function objectField(v: unknown, path: IssuePath, issues: ParseIssue[]): Record<string, unknown> | undefined {
  if (isPlainObject(v)) return v
  if (v === undefined) issues.push({ path, code: 'missing', msg: 'Field required', input: null })
  else issues.push({ path, code: 'model_attributes_type', msg: 'Input should be a valid dictionary or object to extract fields from', input: v })
  return undefined
}

/** A required field is absent; pydantic echoes the enclosing object. */
export function missing(path: IssuePath, issues: ParseIssue[], input: unknown): undefined {
  issues.push({ path, code: 'missing', msg: 'Field required', input })
  return undefined
}

export function listField(v: unknown, path: IssuePath, issues: ParseIssue[], maxItems: number): unknown[] | undefined {
  if (!Array.isArray(v)) {
    issues.push({ path, code: 'list_type', msg: 'Input should be a valid list', input: v })
    return undefined
  }
  if (v.length > maxItems) {
    issues.push({ path, code: 'too_long', msg: `List should have at most ${maxItems} items after validation, not ${v.length}`, input: `[${v.length} items]`, ctx: { field_type: 'List', max_length: maxItems, actual_length: v.length } })
    return undefined
  }
  return v as unknown[]
}

/** Whether a parsed JSON value nests deeper than `limit` (at most 256, so the recursion stays shallow however deep the input). */
export function jsonDepthExceeds(value: unknown, limit: number, depth = 1): boolean {
  // Recursion is bounded by `limit` (it stops one level below it) and allocates nothing per node.
  if (typeof value !== 'object' || value === null) return false
  if (depth > limit) return true
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const x: unknown = value[i]
      if (typeof x === 'object' && x !== null && jsonDepthExceeds(x, limit, depth + 1)) return true
    }
  } else {
    for (const k in value) {
      const x = (value as Record<string, unknown>)[k]
      if (typeof x === 'object' && x !== null && jsonDepthExceeds(x, limit, depth + 1)) return true
    }
  }
  return false
}
