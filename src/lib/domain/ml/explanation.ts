import type { ThresholdRule } from '../rules/types.js'

/** A float as Python's str() writes it for ordinary magnitudes: 10 -> "10.0", 10.5 -> "10.5". */
export function pythonFloat(x: number): string {
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return `${x}.0`
  return String(x)
}

/**
 * The expected range sent to the explainer (reference §13.2): the first active threshold by id,
 * "<min>-<max>", ">= <min>", "<= <max>", or "unknown".
 */
export function expectedRange(thresholds: readonly ThresholdRule[]): string {
  const first = [...thresholds].sort((a, b) => a.id - b.id)[0]
  if (!first) return 'unknown'
  if (first.min !== null && first.max !== null) return `${pythonFloat(first.min)}-${pythonFloat(first.max)}`
  if (first.min !== null) return `>= ${pythonFloat(first.min)}`
  if (first.max !== null) return `<= ${pythonFloat(first.max)}`
  return 'unknown'
}

export interface ExplainRequestBody {
  context: 'industrial_iot_monitoring'
  model_output: {
    metric: string
    observed_value: number
    expected_range: string
    anomaly_score: number
    model: string
    model_version: string
  }
}

/** The body of `POST /explain/anomaly` (reference §13.2), with the sensor's type as the metric. */
export function explainRequestBody(input: { sensorType: string | null; predictedValue: number; anomalyScore: number; thresholds: readonly ThresholdRule[] }): ExplainRequestBody {
  return {
    context: 'industrial_iot_monitoring',
    model_output: {
      metric: input.sensorType?.trim() || 'generic',
      observed_value: input.predictedValue,
      expected_range: expectedRange(input.thresholds),
      anomaly_score: input.anomalyScore,
      model: 'sklearn_regression_iforest',
      model_version: '1.0.0',
    },
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

/** Cuts a string to at most n UTF-16 units without splitting a surrogate pair, marking the cut with "…". */
function cut(s: string, n: number): string {
  if (s.length <= n) return s
  if (n <= 0) return ''
  let head = s.slice(0, n - 1)
  const last = head.charCodeAt(head.length - 1)
  if (last >= 0xd800 && last <= 0xdbff) head = head.slice(0, -1)
  return `${head}…`
}

function capStrings(v: Json, n: number): Json {
  if (typeof v === 'string') return cut(v, n)
  if (Array.isArray(v)) return v.map((x) => capStrings(x, n))
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, capStrings(x, n)]))
  return v
}

/** Removes the last leaf entry (deepest last member or element); false when nothing is left to remove. */
function dropLast(v: Json): boolean {
  if (Array.isArray(v)) {
    const last = v[v.length - 1]
    if (last === undefined) return false
    if (last !== null && typeof last === 'object' && dropLast(last)) return true
    v.pop()
    return true
  }
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v)
    const k = keys[keys.length - 1]
    if (k === undefined) return false
    const last = v[k] as Json
    if (last !== null && typeof last === 'object' && dropLast(last)) return true
    delete v[k]
    return true
  }
  return false
}

/**
 * The answer as JSON text of at most `maxChars` UTF-16 units (SQL Server's nvarchar(1000)), still valid
 * JSON: first every string is cut to the longest common length that fits (binary search), then trailing
 * members are dropped; `{}` at worst. Under the limit the text is JSON.stringify's, unchanged.
 */
export function fitJson(value: unknown, maxChars: number): string {
  const whole = JSON.stringify(value) ?? 'null'
  if (whole.length <= maxChars) return whole
  const base = JSON.parse(whole) as Json
  let lo = 0
  let hi = whole.length
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    if (JSON.stringify(capStrings(base, mid)).length <= maxChars) lo = mid
    else hi = mid - 1
  }
  const capped = capStrings(base, lo)
  let text = JSON.stringify(capped)
  while (text.length > maxChars && dropLast(capped)) text = JSON.stringify(capped)
  if (text.length <= maxChars) return text
  return Array.isArray(base) ? '[]' : '{}'
}
