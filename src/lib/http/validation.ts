import { normaliseUuid } from '../domain/uuid.js'

/** One entry of a FastAPI/pydantic 422 `detail` list. */
export interface ValidationIssue {
  type: string
  loc: Array<string | number>
  msg: string
  input: unknown
  ctx?: Record<string, unknown>
}

const MAX_ECHO = 1000

/** Echoes inputs as pydantic does, but never more than MAX_ECHO characters of one (no amplification). */
function clip(input: unknown): unknown {
  if (typeof input === 'string' && input.length > MAX_ECHO) return `${input.slice(0, MAX_ECHO)}...`
  if (typeof input === 'object' && input !== null) {
    const text = JSON.stringify(input)
    return text.length > MAX_ECHO ? `${text.slice(0, MAX_ECHO)}...` : input
  }
  return input
}

export class BodyInvalid extends Error {
  readonly issues: ValidationIssue[]
  constructor(issues: ValidationIssue[]) {
    super('validation failed')
    this.issues = issues.map((i) => ({ ...i, input: clip(i.input) }))
  }
}

type Loc = Array<string | number>

const PLAIN_DECIMAL = /^\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*$/
const INTEGER = /^\s*[+-]?\d+\s*$/

/**
 * Numbers (DESIGN §3): a JSON number, or a string holding a plain finite decimal ("23.5") for legacy
 * devices. Never booleans, null, hex, "NaN", "Infinity", exponent strings, or values that overflow.
 * The validator never coerces anything else.
 */
export function strictNumber(v: unknown, loc: Loc, issues: ValidationIssue[]): number | undefined {
  if (typeof v === 'number') {
    if (Number.isFinite(v)) return v === 0 ? 0 : v
    issues.push({ type: 'finite_number', loc, msg: 'Input should be a finite number', input: String(v) })
    return undefined
  }
  if (typeof v === 'string') {
    if (PLAIN_DECIMAL.test(v)) {
      const n = Number(v)
      if (Number.isFinite(n)) return n === 0 ? 0 : n
      issues.push({ type: 'finite_number', loc, msg: 'Input should be a finite number', input: v })
      return undefined
    }
    issues.push({ type: 'float_parsing', loc, msg: 'Input should be a valid number, unable to parse string as a number', input: v })
    return undefined
  }
  issues.push({ type: 'float_type', loc, msg: 'Input should be a valid number', input: v })
  return undefined
}

export function strictInt(v: unknown, loc: Loc, issues: ValidationIssue[], min?: number): number | undefined {
  let n: number | undefined
  if (typeof v === 'number' && Number.isSafeInteger(v)) n = v
  else if (typeof v === 'string' && INTEGER.test(v) && Number.isSafeInteger(Number(v))) n = Number(v)
  if (n === undefined) {
    const type = typeof v === 'number' && Number.isFinite(v) ? 'int_from_float' : typeof v === 'string' ? 'int_parsing' : 'int_type'
    issues.push({ type, loc, msg: type === 'int_from_float' ? 'Input should be a valid integer, got a number with a fractional part' : type === 'int_parsing' ? 'Input should be a valid integer, unable to parse string as an integer' : 'Input should be a valid integer', input: v })
    return undefined
  }
  if (min !== undefined && n < min) {
    issues.push({ type: 'greater_than_equal', loc, msg: `Input should be greater than or equal to ${min}`, input: v, ctx: { ge: min } })
    return undefined
  }
  return n
}

export function uuidField(v: unknown, loc: Loc, issues: ValidationIssue[]): string | undefined {
  if (typeof v !== 'string') {
    issues.push({ type: 'uuid_type', loc, msg: 'UUID input should be a string, bytes or UUID object', input: v })
    return undefined
  }
  const u = normaliseUuid(v)
  if (u === undefined) issues.push({ type: 'uuid_parsing', loc, msg: 'Input should be a valid UUID, invalid character or length', input: v })
  return u
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** Refuses NUL, lone surrogates and control characters; NFC-normalises (DESIGN §3). */
export function idString(v: unknown, loc: Loc, issues: ValidationIssue[], maxLength = 255): string | undefined {
  if (typeof v !== 'string') {
    issues.push({ type: 'string_type', loc, msg: 'Input should be a valid string', input: v })
    return undefined
  }
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (LONE_SURROGATE.test(v) || /[\u0000-\u001f\u007f]/.test(v)) {
    issues.push({ type: 'string_pattern_mismatch', loc, msg: 'String should not contain control characters or lone surrogates', input: v })
    return undefined
  }
  const s = v.normalize('NFC')
  if (s.length > maxLength) {
    issues.push({ type: 'string_too_long', loc, msg: `String should have at most ${maxLength} characters`, input: v, ctx: { max_length: maxLength } })
    return undefined
  }
  return s
}

const DATE_ONLY_TIME = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i

/**
 * Datetimes as the original accepted them: ISO-8601 with or without offset (naive = UTC), "YYYY-MM-DD
 * HH:MM", or Unix epoch numbers (seconds, or milliseconds by magnitude). Returns epoch ms. Impossible
 * dates (2024-02-30) are refused, not rolled over.
 */
export function datetimeField(v: unknown, loc: Loc, issues: ValidationIssue[]): number | undefined {
  const fail = (): undefined => {
    issues.push({ type: 'datetime_parsing', loc, msg: 'Input should be a valid datetime', input: v })
    return undefined
  }
  if (typeof v === 'number' || (typeof v === 'string' && PLAIN_DECIMAL.test(v))) {
    const n = typeof v === 'number' ? v : Number(v)
    if (!Number.isFinite(n)) return fail()
    // pydantic: above 2e10 the number is milliseconds.
    const ms = Math.abs(n) > 2e10 ? n : n * 1000
    return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? ms : fail()
  }
  if (typeof v !== 'string') return fail()
  const m = DATE_ONLY_TIME.exec(v.trim())
  if (!m) return fail()
  const [, y, mo, d, h, mi, s, frac, tz] = m
  const year = Number(y)
  const month = Number(mo)
  const day = Number(d)
  const hour = Number(h)
  const minute = Number(mi)
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
  return Number.isFinite(ms) ? ms : fail()
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

export function objectBody(v: unknown, loc: Loc, issues: ValidationIssue[]): Record<string, unknown> | undefined {
  if (isPlainObject(v)) return v
  issues.push({ type: 'model_attributes_type', loc, msg: 'Input should be a valid dictionary or object to extract fields from', input: v })
  return undefined
}

export function missing(loc: Loc, issues: ValidationIssue[], input: unknown): undefined {
  issues.push({ type: 'missing', loc, msg: 'Field required', input })
  return undefined
}

export function listField(v: unknown, loc: Loc, issues: ValidationIssue[], maxItems: number): unknown[] | undefined {
  if (!Array.isArray(v)) {
    issues.push({ type: 'list_type', loc, msg: 'Input should be a valid list', input: v })
    return undefined
  }
  if (v.length > maxItems) {
    issues.push({ type: 'too_long', loc, msg: `List should have at most ${maxItems} items after validation, not ${v.length}`, input: `[${v.length} items]`, ctx: { field_type: 'List', max_length: maxItems, actual_length: v.length } })
    return undefined
  }
  return v
}

/** Whether a parsed JSON value nests deeper than `limit` (at most 256, so the recursion stays shallow however deep the body). */
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
