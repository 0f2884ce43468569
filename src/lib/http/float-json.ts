import type { FastifyReply } from 'fastify'

/**
 * Which fields of an answer are floats in the legacy service: `true` marks a float field, an object
 * describes a nested object (or each element of an array), and the key `*` stands for any key (maps
 * such as diagnostics' `sensors`).
 */
export interface FloatFields {
  readonly [key: string]: true | FloatFields
}

/** A number written as Python writes a float: `95.0`, not `95`; non-finite numbers are `null` as in JSON. */
function floatText(n: number): string {
  return Number.isInteger(n) && Math.abs(n) < 1e21 ? `${n}.0` : JSON.stringify(n)
}

function write(v: unknown, spec: true | FloatFields | undefined): string | undefined {
  if (spec === undefined) return JSON.stringify(v)
  if (spec === true) return typeof v === 'number' ? floatText(v) : JSON.stringify(v)
  if (Array.isArray(v)) return `[${v.map((x) => write(x, spec) ?? 'null').join(',')}]`
  if (typeof v !== 'object' || v === null || typeof (v as { toJSON?: unknown }).toJSON === 'function') return JSON.stringify(v)
  let out = ''
  const wildcard = Object.hasOwn(spec, '*') ? spec['*'] : undefined
  for (const key of Object.keys(v)) {
    const text = write((v as Record<string, unknown>)[key], Object.hasOwn(spec, key) ? spec[key] : wildcard)
    if (text === undefined) continue
    out += `${out === '' ? '' : ','}${JSON.stringify(key)}:${text}`
  }
  return `{${out}}`
}

/**
 * A reply serializer that writes the given fields as floats (`"triggered_value":95.0`) so typed clients
 * of the legacy service that read them as doubles keep working; everything else is JSON.stringify's.
 * Only the marked paths are walked: a large unmarked member (receipts) is one JSON.stringify call.
 */
export function floatJson(fields: FloatFields): (payload: unknown) => string {
  return (payload) => write(payload, fields) ?? 'null'
}

const SENSOR_STATS: FloatFields = {
  delta_sensor: { avg_ms: true, min_ms: true, max_ms: true, std_ms: true },
  lag: { avg_ms: true, min_ms: true, max_ms: true, std_ms: true },
  expected_interval_ms: true,
  tolerance_ms: true,
}

/** Answers this request with `serializer` (a custom serializer sets no content type of its own). */
export function useFloats(reply: FastifyReply, serializer: (payload: unknown) => string): void {
  void reply.type('application/json; charset=utf-8').serializer(serializer)
}

/** The float fields of the legacy answers (reference §1.5, §1.8, §1.11, §1.12). */
export const LEGACY_FLOATS = {
  packet: floatJson({ ingested_ts: true }),
  postgresHealth: floatJson({ latency_ms: true }),
  sensorStatus: floatJson({ alert_active: { triggered_value: true }, prediction_current: { predicted_value: true, confidence: true } }),
  diagnostics: floatJson({ uptime_seconds: true, summary: { avg_delta_sensor_ms: true, avg_lag_ms: true, max_lag_ms: true }, sensors: { '*': SENSOR_STATS }, sensor: SENSOR_STATS }),
  ingestionHealth: floatJson({ avg_lag_ms: true, max_lag_ms: true, out_of_order_rate: true }),
} as const
